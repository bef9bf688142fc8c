package maildir

import "context"

// Maildir is one user's mail: INBOX at the root and Maildir++ subfolders.
// Handles from the same Store share state; each must be closed.
type Maildir struct {
	store *Store
	path  string
}

// FolderInfo describes one folder in a listing.
type FolderInfo struct {
	// Name is the folder's name in UTF-8 with Delimiter between levels;
	// "INBOX" for the root.
	Name string
	// SpecialUse is the folder's RFC 6154 attribute, empty if none.
	SpecialUse SpecialUse
	// Subscribed reports whether the name is in the subscriptions file.
	Subscribed bool
	// HasChildren reports whether a folder exists below this one.
	HasChildren bool
	// NonExistent marks a level that exists only as the parent of a
	// folder (".a.b" without ".a"); it holds no messages.
	NonExistent bool
}

// Path returns the Maildir's directory.
func (m *Maildir) Path() string { return m.path }

// Close releases the handle.
func (m *Maildir) Close() error { return nil }

// Folders lists INBOX and every folder, sorted by name, parents before
// children.
func (m *Maildir) Folders(ctx context.Context) ([]FolderInfo, error) {
	return nil, errNotImplemented
}

// CreateFolder creates the folder name. Missing parents are not created,
// as in Dovecot's Maildir++ layout; ErrFolderExists if it exists.
func (m *Maildir) CreateFolder(ctx context.Context, name string) error {
	return errNotImplemented
}

// DeleteFolder removes the folder and its messages. Its children are
// kept (they stay reachable by name). INBOX cannot be deleted.
func (m *Maildir) DeleteFolder(ctx context.Context, name string) error {
	return errNotImplemented
}

// RenameFolder renames the folder and every child below it; the
// subscriptions follow. Renaming INBOX is refused with ErrInbox.
func (m *Maildir) RenameFolder(ctx context.Context, oldName, newName string) error {
	return errNotImplemented
}

// Subscribe adds (subscribed true) or removes name from the
// subscriptions file. The name need not exist (RFC 3501 §6.3.6).
func (m *Maildir) Subscribe(ctx context.Context, name string, subscribed bool) error {
	return errNotImplemented
}

// Subscriptions returns the subscribed names in file order.
func (m *Maildir) Subscriptions(ctx context.Context) ([]string, error) {
	return nil, errNotImplemented
}

// Folder returns the folder name ("INBOX", case-insensitive, for the
// root), or ErrNoFolder. The Folder is valid until the Maildir is closed.
func (m *Maildir) Folder(ctx context.Context, name string) (*Folder, error) {
	return nil, errNotImplemented
}

// Quota returns the usage recorded in maildirsize, recalculating it when
// the file is missing, corrupt or too long, as Maildir++ prescribes.
func (m *Maildir) Quota(ctx context.Context) (QuotaUsage, error) {
	return QuotaUsage{}, errNotImplemented
}

// SetQuota records limit in maildirsize (recalculating the usage). A zero
// Quota removes the limit.
func (m *Maildir) SetQuota(ctx context.Context, limit Quota) error {
	return errNotImplemented
}

// Lock takes the Maildir's cross-process session lock (an flock on
// "mailagent-session.lock" in the Maildir), waiting until ctx is done.
// POP3 holds it for a session (RFC 1939 §8's exclusive-access lock).
// The lock is released by calling the returned function, or by the
// kernel when the process dies.
func (m *Maildir) Lock(ctx context.Context) (unlock func(), err error) {
	return nil, errNotImplemented
}

// TryLock is Lock without waiting: ErrLocked if another session holds it.
func (m *Maildir) TryLock() (unlock func(), err error) {
	return nil, errNotImplemented
}
