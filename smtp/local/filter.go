package local

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailagent/mailagent/maildir/sieve"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// Copy is one copy of a message for a local user.
type Copy struct {
	// Folder is the Maildir folder ("INBOX", or a folder name as IMAP
	// shows it).
	Folder string
	// Flags are IMAP flags and keywords for the copy.
	Flags []string
	// Create makes a missing folder; without it a copy for a missing
	// folder goes to INBOX.
	Create bool
	// Body, when set, is the message to store in place of the one
	// received (a filter's header edits); Return-Path and Delivered-To
	// are still added above it.
	Body mail.Body
	// Send, when set, makes the entry no stored copy but a message
	// staged for sending (a Sieve redirect, or a reject's notification):
	// the Delivery commits it after the local copies and aborts it with
	// them, so that nothing is sent for a message not accepted.
	Send mail.Delivery
	// Refuse, when set, is the reply a per-recipient protocol (LMTP)
	// gives this recipient instead of storing or sending anything (a
	// Sieve ereject); where the message is accepted for all recipients
	// at once (SMTP), Send, the notification, goes instead.
	Refuse *mail.Error
	// Rejected marks the recipient's refusal of the message (a Sieve
	// reject or ereject): nothing is stored for it, Send is the
	// notification to the sender if one is sent, and the recipient
	// counts as not delivered, so that no success notification
	// (NOTIFY=SUCCESS) names it.
	Rejected bool
}

// Filter decides where a local user's copies of a message go.
type Filter interface {
	// FilterLocal returns the copies to store for u; none discards the
	// message for u. ctx carries the recipient's DSN parameters
	// (mail.RcptDSNFrom), which a notification it sends honours. It cannot fail a delivery: a filter that cannot
	// decide returns the INBOX copy and logs why, so that a message is
	// never lost to a filter.
	FilterLocal(ctx context.Context, u *store.User, env *mail.Envelope, body mail.Body) []Copy
}

// SieveFilter is the Filter that runs Sieve scripts at delivery, as
// Pigeonhole does: the Before scripts, the user's active script
// (HOME/.dovecot.sieve, HOME being the parent of the user's Maildir), then
// the After scripts. As in Pigeonhole, the next script of that sequence
// runs only when the one before it kept the message (an explicit keep
// or the implicit one): a fileinto, redirect, reject or discard in a
// Before script ends the sequence, while stop ends only the script that
// runs it. The scripts' keep, fileinto and discard decide the copies,
// with their imap4flags flags. An erring script, or one past its limits,
// keeps the message in INBOX unedited (the original message, without any
// script's header edits), sends none of the redirects staged, and logs
// why.
//
// Header edits (editheader) are applied to the copies stored after them.
// Vacation replies, redirects and rejects' notifications go through
// Outbound when it is set; without it the message is kept in INBOX and
// the action logged, so that nothing is lost.
//
// A redirect is staged with the delivery (through Route when set, else
// Outbound) and sent only once the local copies are committed. It keeps the message's envelope sender (the null
// sender too), or the one RedirectSender gives; the copy sent carries
// Delivered-To and Received fields of this delivery. A message that
// already has a Delivered-To field for the user or for the redirect's
// address is not redirected but kept (a loop), and one message is
// redirected at most Limits.MaxRedirects times per user (default 4); the
// others are kept.
//
// reject and ereject (RFC 5429) refuse the user's copy only: the message
// is still accepted for the other recipients, and a delivery status
// notification (RFC 3464) with the script's reason goes to the envelope
// sender through Outbound's Bouncer (the queue). None is sent to the null
// sender or for Auto-Submitted, list or bulk mail, which is then
// discarded, as Pigeonhole does. Over LMTP, where each recipient gets its
// own reply, ereject refuses the recipient with 550 5.7.1 and the reason
// (RFC 5429 section 2.1: reject at the protocol level where possible)
// instead of a notification.
type SieveFilter struct {
	// MaildirBase is the Maildir base directory, against which relative
	// store.User.Maildir paths are resolved. Required unless Home is set.
	MaildirBase string
	// Home gives a user's home, where .dovecot.sieve and sieve/ are;
	// default the parent of the user's Maildir.
	Home func(u *store.User) string
	// Before and After are paths of global scripts run before and after
	// the user's (Pigeonhole's sieve_before and sieve_after).
	Before, After []string
	// GlobalDir holds the scripts of include :global (NAME.sieve).
	GlobalDir string
	// Limits bound each script; Timeout bounds the run of all of them
	// for one user (default 10 s).
	Limits  sieve.Limits
	Timeout time.Duration
	// Outbound sends vacation replies (the queue); nil leaves vacation
	// unperformed (logged, the message kept in INBOX as well). Replies
	// are remembered per user in HOME/.mailagent-vacation.
	Outbound mail.Target
	// Route, when set, takes redirects in place of Outbound: the
	// server's router, so that a redirect is resolved as a submission of
	// this server would be (alias, catch-all, local mailbox, whose own
	// script runs with the same Delivered-To loop check) and one to a
	// local address lands in its Maildir without leaving the process,
	// while one to a remote address still goes to the queue. Its copies
	// are staged with the delivery and committed after it, as Outbound's.
	Route mail.Target
	// RedirectSender, when set, gives the envelope sender of a redirect
	// of a message from from (never the null sender, which is kept) to
	// to for u: the hook for a Sender Rewriting Scheme, so that the
	// destination's SPF check passes. Nil keeps the original sender, as
	// Pigeonhole does.
	RedirectSender func(u *store.User, env *mail.Envelope, to string) string
	// MayUse checks an address a script sends as (vacation :from, a From
	// field editheader changed on a redirected message) with
	// submission's rule, smtp.SenderCheck: nil when user may use addr.
	// An address refused falls back to the default, the user's own
	// address for a vacation reply and the message's own From for a
	// redirect. Nil allows the user's own address only.
	MayUse func(ctx context.Context, user, addr string) error
	// Signer, when set, signs (DKIM) vacation replies and redirects whose
	// From the script set, as submitted mail is signed; a domain without
	// a key goes unsigned.
	Signer mail.Signer
	// Logger receives script errors; nil discards.
	Logger *slog.Logger

	cache    sync.Map // path → *cachedScript
	memMu    sync.Mutex
	memLocks map[string]*sync.Mutex // per home: one writer of its vacation memory
}

func (f *SieveFilter) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

type cachedScript struct {
	mtime  time.Time
	size   int64
	script *sieve.Script
}

// script loads and compiles the script at path, from the cache when the
// file has not changed; nil, nil when there is none.
func (f *SieveFilter) script(path string) (*sieve.Script, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c, ok := f.cache.Load(path); ok {
		c := c.(*cachedScript)
		if c.mtime.Equal(fi.ModTime()) && c.size == fi.Size() {
			return c.script, nil
		}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := sieve.Parse(src, f.Limits)
	if err != nil {
		return nil, err
	}
	f.cache.Store(path, &cachedScript{mtime: fi.ModTime(), size: fi.Size(), script: s})
	return s, nil
}

func (f *SieveFilter) home(u *store.User) string {
	if f.Home != nil {
		return f.Home(u)
	}
	p := u.Maildir
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.MaildirBase, p)
	}
	return filepath.Dir(filepath.Clean(p))
}

// dirLoader loads include's scripts: personal ones from HOME/sieve,
// global ones from GlobalDir.
type dirLoader struct{ personal, global string }

func (l dirLoader) Load(_ context.Context, loc sieve.Location, name string) ([]byte, error) {
	dir := l.personal
	if loc == sieve.Global {
		dir = l.global
	}
	if dir == "" || name == "" || name[0] == '.' || filepath.Base(name) != name {
		return nil, sieve.ErrNotFound
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".sieve"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, sieve.ErrNotFound
	}
	return b, err
}

var inboxOnly = []Copy{{Folder: "INBOX"}}

// FilterLocal implements Filter.
func (f *SieveFilter) FilterLocal(ctx context.Context, u *store.User, env *mail.Envelope, body mail.Body) []Copy {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("id", env.ID, "user", u.Address)
	home := f.home(u)
	paths := append(append(append([]string(nil), f.Before...), filepath.Join(home, ".dovecot.sieve")), f.After...)
	var scripts []*sieve.Script
	for _, p := range paths {
		s, err := f.script(p)
		if err != nil {
			log.Warn("sieve script unusable, delivering to INBOX", "script", p, "err", err)
			return inboxOnly
		}
		if s != nil {
			scripts = append(scripts, s)
		}
	}
	if len(scripts) == 0 {
		return inboxOnly
	}
	msg, err := readForSieve(body)
	if err != nil {
		log.Warn("message unreadable for sieve, delivering to INBOX", "err", err)
		return inboxOnly
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := sieve.Options{Limits: f.Limits, Loader: dirLoader{personal: filepath.Join(home, "sieve"), global: f.GlobalDir}}
	sender := env.From
	var copies, sends []Copy
	cancelled, keepInbox := false, false
	var inboxFlags []string
	var inboxBody mail.Body
	redirects := 0
	maxRedirects := f.Limits.MaxRedirects
	if maxRedirects <= 0 {
		maxRedirects = 4
	}
	abortSends := func() {
		for _, c := range sends {
			if c.Send != nil {
				c.Send.Abort(context.WithoutCancel(ctx))
			}
		}
	}
	for i, s := range scripts {
		res, err := sieve.Run(ctx, s, msg, sieve.Envelope{From: sender, To: u.Address}, opts)
		if err != nil {
			log.Warn("sieve script failed, delivering to INBOX", "err", err)
			abortSends()
			return inboxOnly
		}
		// As Pigeonhole's sieve_before/sieve_after sequence: the next
		// script runs only when this one kept the message (implicitly or
		// not); a stop ends this script alone.
		ended := !slices.ContainsFunc(res.Actions, func(a sieve.Action) bool { return a.Kind == sieve.ActKeep }) && i < len(scripts)-1
		if ended {
			log.Debug("sieve: script did not keep the message; the scripts after it do not run", "after", len(scripts)-1-i)
		}
		for _, a := range res.Actions {
			switch a.Kind {
			case sieve.ActKeep:
				if a.Implicit {
					inboxFlags, inboxBody = a.Flags, edited(msg, a.Header)
					continue
				}
				copies = append(copies, Copy{Folder: "INBOX", Flags: a.Flags, Body: edited(msg, a.Header)})
				cancelled = true
			case sieve.ActFileInto:
				copies = append(copies, Copy{Folder: a.Mailbox, Flags: a.Flags, Create: a.Create, Body: edited(msg, a.Header)})
				if !a.Copy {
					cancelled = true
				}
			case sieve.ActDiscard:
				cancelled = true
			case sieve.ActVacation:
				if f.Outbound == nil {
					log.Warn("sieve vacation not performed: no outbound queue; the message is kept")
					keepInbox = true
					continue
				}
				if err := f.sendVacation(ctx, u, env, home, msg, a.Vacation); err != nil {
					log.Warn("sieve vacation reply failed", "err", err)
				}
			case sieve.ActRedirect:
				if redirects >= maxRedirects {
					log.Warn("sieve redirect not performed: too many redirects; the message is kept", "address", a.Address)
					keepInbox = true
					continue
				}
				d, err := f.stageRedirect(ctx, u, env, body, msg, a)
				if err != nil {
					log.Warn("sieve redirect not performed; the message is kept", "address", a.Address, "err", err)
					keepInbox = true
					continue
				}
				redirects++
				sends = append(sends, Copy{Send: d})
				log.Info("sieve redirect staged", "address", a.Address, "copy", a.Copy)
				if !a.Copy {
					cancelled = true
				}
			case sieve.ActReject:
				reply := rejectReply(a.Reason)
				d, ok, err := f.stageReject(ctx, u, env, body, msg, reply)
				switch {
				case err != nil:
					log.Warn("sieve reject not performed; the message is kept", "err", err)
					keepInbox = true
				case !ok:
					log.Info("sieve reject: no notification to the null sender, for automatic mail, or against the recipient's NOTIFY; the message is discarded")
					c := Copy{Rejected: true}
					if a.Extended {
						c.Refuse = reply
					}
					sends = append(sends, c)
					cancelled = true
				default:
					c := Copy{Send: d, Rejected: true}
					if a.Extended {
						c.Refuse = reply
					}
					sends = append(sends, c)
					cancelled = true
				}
			}
		}
		if ended {
			break
		}
	}
	if !cancelled || keepInbox {
		copies = append(copies, Copy{Folder: "INBOX", Flags: inboxFlags, Body: inboxBody})
	}
	return append(dedupeCopies(copies), sends...)
}

// edited is the message with header h in place of its own, nil when the
// script edited nothing.
func edited(msg *sieve.Message, h []sieve.Field) mail.Body {
	if h == nil {
		return nil
	}
	var b strings.Builder
	for _, f := range h {
		b.WriteString(f.Name + ":" + f.Value + "\r\n")
	}
	b.WriteString("\r\n")
	out := []byte(b.String())
	body := make([]byte, msg.BodySize)
	if _, err := msg.Body.ReadAt(body, 0); err != nil && err != io.EOF {
		return nil
	}
	return mail.BytesBody(append(out, body...))
}

// dedupeCopies keeps one copy per folder, the last one's flags.
func dedupeCopies(in []Copy) []Copy {
	var out []Copy
	for _, c := range in {
		dup := false
		for i := range out {
			if out[i].Folder == c.Folder {
				out[i].Flags, out[i].Create, out[i].Body, dup = c.Flags, out[i].Create || c.Create, c.Body, true
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// readForSieve reads the message the script looks at, up to 64 MiB.
func readForSieve(body mail.Body) (*sieve.Message, error) {
	r, err := body.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return sieve.ReadMessage(io.Reader(r), 64<<20)
}
