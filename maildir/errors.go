package maildir

import (
	"errors"
	"fmt"
)

// Sentinel errors, compared with errors.Is.
var (
	// ErrInvalidName is matched by every *NameError.
	ErrInvalidName = errors.New("maildir: invalid folder name")
	// ErrOverQuota is matched by every *QuotaError. SMTP maps it to
	// "552 5.2.2", IMAP to "NO [OVERQUOTA]".
	ErrOverQuota = errors.New("maildir: over quota")
	// ErrNoFolder is returned for a folder that does not exist.
	ErrNoFolder = errors.New("maildir: no such folder")
	// ErrFolderExists is returned when creating or renaming onto an
	// existing folder.
	ErrFolderExists = errors.New("maildir: folder already exists")
	// ErrNoMessage is returned for a UID that is not (or no longer) in the
	// folder.
	ErrNoMessage = errors.New("maildir: no such message")
	// ErrInbox is returned for operations INBOX cannot undergo
	// (deleting it, renaming it, creating it as a subfolder target).
	ErrInbox = errors.New("maildir: operation not permitted on INBOX")
	// ErrTooManyKeywords is returned when a folder would need more than 26
	// keywords, the number of letters dovecot-keywords can give names to.
	ErrTooManyKeywords = errors.New("maildir: too many keywords in folder")
	// ErrInvalidFlag is returned for a flag that is neither a system flag
	// nor a valid IMAP keyword atom.
	ErrInvalidFlag = errors.New("maildir: invalid flag")
	// ErrLocked is returned by TryLock when another session holds the lock.
	ErrLocked = errors.New("maildir: locked by another session")
	// ErrClosed is returned by operations on a closed Store or Maildir.
	ErrClosed = errors.New("maildir: closed")
	// ErrTooLarge is returned for a message above Options.MaxMessageSize.
	ErrTooLarge = errors.New("maildir: message too large")
	// ErrTooManyFolders is returned when creating a folder would take a
	// Maildir past Options.MaxFolders. IMAP maps it to "NO [LIMIT]".
	ErrTooManyFolders = errors.New("maildir: too many folders")
	// ErrFolderTooDeep is returned when a folder would be created (or
	// renamed) deeper than Options.MaxFolderDepth hierarchy levels.
	ErrFolderTooDeep = errors.New("maildir: folder hierarchy too deep")
	// ErrTooManySubscriptions is returned when a subscription would take
	// the subscriptions file past MaxSubscriptions names.
	ErrTooManySubscriptions = errors.New("maildir: too many subscriptions")
)

// NameError reports a folder name that was refused because it could escape
// the user's directory or cannot be stored the way Dovecot stores it.
type NameError struct {
	Name   string
	Reason string
}

// Error implements error.
func (e *NameError) Error() string {
	return fmt.Sprintf("maildir: invalid folder name %q: %s", e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidName) true.
func (e *NameError) Is(target error) bool { return target == ErrInvalidName }

// QuotaError reports a delivery or append refused by the Maildir++ quota.
type QuotaError struct {
	// Limit is the quota in force, Usage the usage before the refused
	// message, Size that message's size.
	Limit Quota
	Usage QuotaUsage
	Size  int64
}

// Error implements error.
func (e *QuotaError) Error() string {
	return fmt.Sprintf("maildir: over quota: %d bytes/%d messages used of %d/%d, message %d bytes",
		e.Usage.Bytes, e.Usage.Messages, e.Limit.Bytes, e.Limit.Messages, e.Size)
}

// Is makes errors.Is(err, ErrOverQuota) true.
func (e *QuotaError) Is(target error) bool { return target == ErrOverQuota }
