package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

var (
	errMailboxFull     = &mail.Error{Code: 552, EnhancedCode: [3]int{5, 2, 2}, Message: "Mailbox full"}
	errMailboxFullTemp = &mail.Error{Code: 452, EnhancedCode: [3]int{4, 2, 2}, Message: "Mailbox full, try again later"}
	errTooBig          = &mail.Error{Code: 552, EnhancedCode: [3]int{5, 3, 4}, Message: "Message too big for the mailbox"}
	errNoMailbox       = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 2, 1}, Message: "Mailbox unavailable"}
	// The router gives the same two replies for the same causes.
	errUnknownUser = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 1, 1}, Message: "User unknown"}
	errTempLookup  = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Temporary lookup failure, try again later"}
)

// stageConcurrency bounds how many copies of one message are written at
// once: each write ends with an fsync, and a few in flight hide most of
// their latency without flooding the disk.
const stageConcurrency = 8

// Delivery is the Target that delivers into local users' Maildirs
// through a maildir.Store, as Dovecot's LDA and LMTP do. Recipients are
// user addresses; each copy gets Return-Path and Delivered-To header
// fields; a message judged Junk goes to the Junk folder. Set the fields
// before first use.
//
// Delivery is two-phase. AddRecipient refuses what can be decided per
// recipient before the message is sent: an unknown or disabled user
// (550 5.1.1), a mailbox already over quota (552 5.2.2, or 452 4.2.2 with
// QuotaTempFail). Body (or BodyNonAtomic) looks each user up again (one
// removed or disabled since is 550 5.1.1), writes every copy to an
// unnamed file (or tmp/) and fsyncs it, charging the quota; Commit names
// them all in new/ and fsyncs the directories, all or none; Abort
// discards them.
type Delivery struct {
	// Maildirs stores the messages, normally a *maildir.Store. Required.
	Maildirs Maildirs
	// Directory finds each user's Maildir path and quota. Required.
	Directory store.Directory
	// QuotaTempFail answers a full mailbox with 452 4.2.2 (try again
	// later) rather than 552 5.2.2, like Dovecot's quota_full_tempfail.
	// Default false: a full mailbox is a permanent failure, which the
	// Router turns into a bounce when it is found after DATA.
	QuotaTempFail bool
	// JunkFolder names the folder a message judged spam (Envelope.Junk)
	// goes to for user u, so that filtering can be set per domain and
	// per user; "INBOX" keeps spam in INBOX. Nil, or "", means "Junk",
	// the folder IMAP lists with the \Junk special-use attribute.
	JunkFolder func(u *store.User) string
	// Filter, when set, decides each user's copies (folders and flags;
	// none to discard), e.g. SieveFilter running the user's Sieve script.
	// Nil stores one copy in INBOX (the junk folder for spam).
	Filter Filter
	// Logger receives delivery failures; nil discards.
	Logger *slog.Logger
}

// Maildirs is what a Delivery needs of the mail storage: the quota check
// at RCPT and the staged (written, fsynced, not yet visible) copy that
// Commit names. *maildir.Store implements it; a wrapper can add
// accounting, or faults in a test.
type Maildirs interface {
	CheckQuota(ctx context.Context, path string, limit *maildir.Quota, size int64) error
	Stage(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error)
}

// Start implements Target.
func (t *Delivery) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	return &delivery{t: t, env: env, seen: map[string]bool{}}, nil
}

type delivery struct {
	t      *Delivery
	env    *mail.Envelope
	users  []*store.User
	rcpts  []string            // as added, parallel to users
	dsns   []mail.RcptDSN      // each recipient's DSN parameters, parallel to users
	seen   map[string]bool     // recipients added, by address
	final  []string            // the user each recipient was delivered to, parallel to users
	staged [][]*maildir.Staged // parallel to users, nil where not written
	sends  [][]mail.Delivery   // parallel to users: redirects and notifications staged by the filter
	// folders names each staged copy's folder, parallel to staged.
	folders [][]string
	// rejected marks the recipients whose filter refused the message,
	// parallel to users.
	rejected []bool
	done     bool
}

// AddRecipient implements Delivery: the user must exist, be enabled and
// have room in the mailbox.
func (d *delivery) AddRecipient(ctx context.Context, rcpt string) error {
	if d.seen[rcpt] {
		return nil
	}
	u, err := d.t.Directory.LookupUser(ctx, rcpt)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errUnknownUser
	case err != nil:
		d.logger().Warn("user lookup failed", "id", d.env.ID, "rcpt", rcpt, "err", err)
		return errTempLookup
	case u.Disabled:
		return errUnknownUser
	}
	if err := d.t.Maildirs.CheckQuota(ctx, u.Maildir, quotaOf(u), 1); err != nil {
		return d.reply(u, err)
	}
	d.seen[rcpt] = true
	d.users = append(d.users, u)
	d.rcpts = append(d.rcpts, rcpt)
	d.dsns = append(d.dsns, mail.RcptDSNFrom(ctx))
	return nil
}

func quotaOf(u *store.User) *maildir.Quota {
	return &maildir.Quota{Bytes: u.QuotaBytes, Messages: u.QuotaMessages}
}

// Body implements Delivery: every copy is written and fsynced, or none is
// kept and the first failure (a temporary one before a permanent one) is
// returned.
func (d *delivery) Body(ctx context.Context, body mail.Body) error {
	errs := d.stageAll(ctx, body, false)
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || !mail.IsPermanent(err) && mail.IsPermanent(first)) {
			first = err
		}
	}
	if first != nil {
		d.abort()
		return first
	}
	return nil
}

// BodyNonAtomic implements PartialDelivery: every copy is written and
// fsynced, and each recipient's status says whether its copy is ready for
// Commit. Recipients given an error get nothing.
func (d *delivery) BodyNonAtomic(ctx context.Context, status mail.StatusCollector, body mail.Body) {
	for i, err := range d.stageAll(ctx, body, true) {
		status.SetStatus(d.rcpts[i], err)
	}
}

// stageAll writes every recipient's copies concurrently and returns each
// one's reply, nil for those staged (kept in d.staged, with the messages
// the filter staged for sending in d.sends). perRcpt says each recipient
// gets its own reply (LMTP), so that a filter may refuse one.
func (d *delivery) stageAll(ctx context.Context, body mail.Body, perRcpt bool) []error {
	stage := d.t.Maildirs.Stage
	errs := make([]error, len(d.users))
	staged := make([][]*maildir.Staged, len(d.users))
	sends := make([][]mail.Delivery, len(d.users))
	folders := make([][]string, len(d.users))
	rejected := make([]bool, len(d.users))
	users := make([]string, len(d.users))
	sem := make(chan struct{}, stageConcurrency)
	var wg sync.WaitGroup
	for i := range d.users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// Looked up again, as Postfix's virtual(8) does at delivery:
			// a user removed or disabled since RCPT fails for good (and
			// is bounced), and a changed quota or path is the one used.
			cur, err := d.t.Directory.LookupUser(ctx, d.rcpts[i])
			switch {
			case errors.Is(err, store.ErrNotFound), err == nil && cur.Disabled:
				errs[i] = errUnknownUser
				return
			case err != nil:
				errs[i] = fmt.Errorf("user lookup at delivery: %w", err)
				return
			}
			u := cur
			users[i] = u.Address
			copies := []Copy{{Folder: "INBOX"}}
			if d.t.Filter != nil {
				copies = d.t.Filter.FilterLocal(mail.WithRcptDSN(ctx, d.dsns[i]), u, d.env, body)
			}
			copies, sends[i], rejected[i], errs[i] = d.splitSends(ctx, copies, perRcpt)
			if errs[i] != nil {
				return
			}
			staged[i] = make([]*maildir.Staged, 0, len(copies)) // none: discarded
			for _, c := range copies {
				st, folder, err := d.stageCopy(ctx, stage, u, c, body)
				if err != nil {
					errs[i] = d.reply(u, err)
					for _, s := range staged[i] {
						s.Abort()
					}
					staged[i] = nil
					abortSends(ctx, sends[i])
					sends[i] = nil
					folders[i] = nil
					return
				}
				staged[i] = append(staged[i], st)
				folders[i] = append(folders[i], folder)
			}
		}()
	}
	wg.Wait()
	d.staged, d.sends, d.folders, d.final, d.rejected = staged, sends, folders, users, rejected
	return errs
}

// splitSends separates the filter's stored copies from the messages it
// staged for sending, and reports whether the filter rejected the
// message. Where each recipient has its own reply, a copy refusing the
// recipient is that reply and nothing is kept or sent.
func (d *delivery) splitSends(ctx context.Context, copies []Copy, perRcpt bool) ([]Copy, []mail.Delivery, bool, error) {
	var keep []Copy
	var sends []mail.Delivery
	var refuse *mail.Error
	rejected := false
	for _, c := range copies {
		rejected = rejected || c.Rejected
		switch {
		case c.Send == nil && c.Refuse == nil && !c.Rejected:
			keep = append(keep, c)
		case perRcpt && c.Refuse != nil:
			refuse = c.Refuse
			if c.Send != nil {
				c.Send.Abort(ctx)
			}
		case c.Send != nil:
			sends = append(sends, c.Send)
		}
	}
	if refuse != nil {
		abortSends(ctx, sends)
		return nil, nil, true, refuse
	}
	return keep, sends, rejected, nil
}

func abortSends(ctx context.Context, sends []mail.Delivery) {
	for _, s := range sends {
		s.Abort(context.WithoutCancel(ctx))
	}
}

// stageCopy writes one copy for u and names the folder it went to
// (which the log reports). A copy for a folder that cannot take
// it (a bad name, missing without Create, or past the Maildir's folder
// limits) goes to INBOX instead, as Pigeonhole's failed fileinto falls
// back to the implicit keep.
func (d *delivery) stageCopy(ctx context.Context, stage func(context.Context, string, string, io.Reader, *maildir.DeliverOptions) (*maildir.Staged, error), u *store.User, c Copy, body mail.Body) (*maildir.Staged, string, error) {
	folder := c.Folder
	inbox := folder == "" || folder == "INBOX"
	if inbox {
		// The keep: INBOX, or the user's junk folder for spam.
		folder = d.t.folder(d.env, u)
		c.Create = true
	}
	for {
		src := body
		if c.Body != nil {
			src = c.Body
		}
		r, err := finalCopy(d.env, u.Address, src).Open()
		if err != nil {
			return nil, "", err
		}
		opts := &maildir.DeliverOptions{CreateFolder: c.Create, Quota: quotaOf(u), Flags: c.Flags}
		st, err := stage(ctx, u.Maildir, folder, r, opts)
		r.Close()
		if err != nil && folder != "INBOX" && (folderLimit(err) || !inbox && (errors.Is(err, maildir.ErrInvalidName) || errors.Is(err, maildir.ErrNoFolder))) {
			d.logger().Warn("folder unusable, delivering to INBOX", "id", d.env.ID, "user", u.Address, "folder", folder, "err", err)
			folder, c.Create, inbox = "INBOX", true, true
			continue
		}
		return st, folder, err
	}
}

// folderLimit reports whether err is the Maildir's refusal to create
// one more folder (or one that deep): the copy, a filter's or the keep
// into a junk folder, goes to INBOX.
func folderLimit(err error) bool {
	return errors.Is(err, maildir.ErrTooManyFolders) || errors.Is(err, maildir.ErrFolderTooDeep)
}

// finalCopy is body as a final delivery stores it for mailbox: with the
// envelope recorded (RFC 5321 section 4.4 Return-Path; Delivered-To as
// Postfix and Dovecot write it).
func finalCopy(env *mail.Envelope, mailbox string, body mail.Body) mail.Body {
	return headerenc.Prepend(body, "Return-Path: "+headerenc.Path(env.From), "Delivered-To: "+headerenc.AddrSpec(mailbox))
}

// reply maps a failure for u to the reply the client gets, logging what
// it does not say.
func (d *delivery) reply(u *store.User, err error) error {
	switch {
	case errors.Is(err, maildir.ErrOverQuota):
		if d.t.QuotaTempFail {
			return errMailboxFullTemp
		}
		return errMailboxFull
	case errors.Is(err, maildir.ErrTooLarge):
		return errTooBig
	case errors.Is(err, maildir.ErrInvalidName), errors.Is(err, maildir.ErrNoFolder):
		d.logger().Error("local mailbox unusable", "id", d.env.ID, "user", u.Address, "err", err)
		return errNoMailbox
	}
	// A system failure (disk full, I/O error) stays an error value: the
	// server answers it by class (452 4.3.1 for storage exhausted, else
	// 451 4.3.0) whichever leg hit it, and logs the detail.
	return fmt.Errorf("local delivery to %s: %w", u.Address, err)
}

// Commit implements Delivery: every copy staged is named and its
// directory fsynced, all or none.
func (d *delivery) Commit(ctx context.Context) error {
	if d.done {
		return errors.New("local: local delivery already finished")
	}
	d.done = true
	var ready []*maildir.Staged
	for _, s := range d.staged {
		ready = append(ready, s...)
	}
	if err := maildir.CommitAll(ctx, ready...); err != nil {
		for _, ss := range d.sends {
			abortSends(ctx, ss)
		}
		return fmt.Errorf("local delivery: %w", err)
	}
	// The copies are stored: what the filters decided to send goes now.
	// A failure cannot take the stored copies back, so it is logged.
	for i, ss := range d.sends {
		for _, s := range ss {
			if err := s.Commit(ctx); err != nil {
				d.logger().Error("sieve's outgoing message not queued", "id", d.env.ID, "user", d.rcpts[i], "err", err)
			}
		}
	}
	return nil
}

// Abort implements Delivery: the copies written are discarded.
func (d *delivery) Abort(ctx context.Context) error {
	if !d.done {
		d.abort()
	}
	d.done = true
	return nil
}

func (d *delivery) abort() {
	for _, ss := range d.staged {
		for _, s := range ss {
			s.Abort()
		}
	}
	d.staged = nil
	for _, ss := range d.sends {
		abortSends(context.Background(), ss)
	}
	d.sends = nil
}

// Withdraw implements Withdrawer: rcpt's copy, written by Body, is
// discarded and Commit leaves it out.
func (d *delivery) Withdraw(ctx context.Context, rcpt string) error {
	if d.done {
		return errors.New("local: local delivery already finished")
	}
	for i, r := range d.rcpts {
		if r == rcpt && i < len(d.staged) && d.staged[i] != nil {
			for _, s := range d.staged[i] {
				s.Abort()
			}
			d.staged[i] = nil
			if i < len(d.sends) {
				abortSends(ctx, d.sends[i])
				d.sends[i] = nil
			}
			d.folders[i] = nil
			return nil
		}
	}
	return errors.New("local: no copy of " + rcpt + " to withdraw")
}

// Mailboxes names where rcpt's copies went once Body has run: the user
// whose Maildir took them (after subaddress and case folding) and each
// copy's folder ("INBOX", "Junk", a Sieve fileinto's folder), none when
// rcpt got no copy. The router logs them, one line per recipient.
func (d *delivery) Mailboxes(rcpt string) (user string, folders []string) {
	for i, r := range d.rcpts {
		if r == rcpt && i < len(d.staged) && i < len(d.folders) && d.staged[i] != nil {
			return d.final[i], d.folders[i]
		}
	}
	return "", nil
}

// Rejected reports whether rcpt's filter refused the message once Body
// has run (a Sieve reject): it got no copy and is not to be reported
// delivered.
func (d *delivery) Rejected(rcpt string) bool {
	for i, r := range d.rcpts {
		if r == rcpt && i < len(d.rejected) {
			return d.rejected[i]
		}
	}
	return false
}

func (d *delivery) logger() *slog.Logger {
	if d.t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.t.Logger
}

var (
	_ mail.PartialDelivery = (*delivery)(nil)
	_ mail.Withdrawer      = (*delivery)(nil)
)

// folder is where u's copy of a message goes: INBOX, or for spam the
// user's junk folder.
func (t *Delivery) folder(env *mail.Envelope, u *store.User) string {
	if !env.Junk {
		return "INBOX"
	}
	if t.JunkFolder != nil {
		if f := t.JunkFolder(u); f != "" {
			return f
		}
	}
	return "Junk"
}
