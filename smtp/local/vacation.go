package local

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/maildir/sieve"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// vacationFile is the per-user memory of vacation replies, in the home
// beside .dovecot.sieve: one line per reply, "UNIXTIME SENDER HANDLEHASH".
const vacationFile = ".mailagent-vacation"

// vacationFileMax is the size past which the memory is rewritten with
// only the replies of the last year.
const vacationFileMax = 256 << 10

// fileMemory is a sieve.VacationMemory kept in one user's home.
type fileMemory struct {
	path string
	mu   *sync.Mutex
}

func handleHash(h string) string {
	s := sha256.Sum256([]byte(h))
	return hex.EncodeToString(s[:8])
}

func (m fileMemory) Replied(_ context.Context, sender, handle string, since time.Time) (bool, error) {
	f, err := os.Open(m.path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	want := sender + " " + handleHash(handle)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ts, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || rest != want {
			continue
		}
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil && time.Unix(n, 0).After(since) {
			return true, nil
		}
	}
	return false, sc.Err()
}

func (m fileMemory) Record(_ context.Context, sender, handle string, when time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fi, err := os.Stat(m.path); err == nil && fi.Size() > vacationFileMax {
		m.prune(when.Add(-365 * 24 * time.Hour))
	}
	f, err := os.OpenFile(m.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d %s %s\n", when.Unix(), sender, handleHash(handle))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// prune rewrites the memory without the replies before cutoff.
func (m fileMemory) prune(cutoff time.Time) {
	b, err := os.ReadFile(m.path)
	if err != nil {
		return
	}
	var keep strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		ts, _, _ := strings.Cut(l, " ")
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil && time.Unix(n, 0).After(cutoff) {
			keep.WriteString(l + "\n")
		}
	}
	tmp := m.path + ".tmp"
	if os.WriteFile(tmp, []byte(keep.String()), 0o600) == nil {
		os.Rename(tmp, m.path)
	}
}

// sendVacation answers msg for u as v says, when RFC 5230's rules allow:
// from the null sender (so that nothing answers it), Auto-Submitted:
// auto-replied (RFC 3834), In-Reply-To and References naming the message.
func (f *SieveFilter) sendVacation(ctx context.Context, u *store.User, env *mail.Envelope, home string, msg *sieve.Message, v *sieve.Vacation) error {
	f.memMu.Lock()
	if f.memLocks == nil {
		f.memLocks = map[string]*sync.Mutex{}
	}
	mu := f.memLocks[home]
	if mu == nil {
		mu = &sync.Mutex{}
		f.memLocks[home] = mu
	}
	f.memMu.Unlock()
	now := time.Now()
	ok, why, err := v.ShouldReply(ctx, msg, sieve.Envelope{From: env.From, To: u.Address}, fileMemory{path: filepath.Join(home, vacationFile), mu: mu}, now)
	if err != nil {
		return err
	}
	if !ok {
		f.logger().Info("vacation: no reply", "id", env.ID, "user", u.Address, "why", why)
		return nil
	}
	// The From is the user's address unless :from names one the user
	// may send as (the rule of submitted mail); written by net/mail, so
	// the script's text cannot make another field.
	from := headerenc.AddrSpec(u.Address)
	if v.From != "" {
		if a, err := netmail.ParseAddress(v.From); err == nil && f.owns(ctx, u, a.Address) {
			from = a.String()
		} else {
			f.logger().Info("vacation: :from not owned by the user, replying from the user's address", "id", env.ID, "user", u.Address)
		}
	}
	id := make([]byte, 12)
	rand.Read(id)
	var b strings.Builder
	hdr := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	hdr("From", from)
	hdr("To", headerenc.AddrSpec(env.From))
	hdr("Subject", mime.QEncoding.Encode("utf-8", v.ReplySubject(msg)))
	hdr("Date", now.Format(time.RFC1123Z))
	_, domain, _ := strings.Cut(u.Address, "@")
	hdr("Message-ID", "<vacation."+hex.EncodeToString(id)+"@"+domain+">")
	if ids := firstField(msg, "Message-ID"); ids != "" {
		hdr("In-Reply-To", ids)
		refs := strings.TrimSpace(firstField(msg, "References") + " " + ids)
		hdr("References", refs)
	}
	hdr("Auto-Submitted", "auto-replied (vacation)")
	hdr("Precedence", "bulk")
	if v.MIME {
		hdr("MIME-Version", "1.0")
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(v.Reason, "\r\n", "\n"), "\n", "\r\n"))
	} else {
		hdr("MIME-Version", "1.0")
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n" + strings.ReplaceAll(strings.ReplaceAll(v.Reason, "\r\n", "\n"), "\n", "\r\n"))
	}
	if !strings.HasSuffix(b.String(), "\r\n") {
		b.WriteString("\r\n")
	}
	venv := &mail.Envelope{ID: env.ID + ".vacation", From: "", Generated: true, Received: now, Hostname: env.Hostname}
	reply := f.sign(ctx, venv, mail.BytesBody([]byte(b.String())))
	d, err := f.Outbound.Start(ctx, venv)
	if err != nil {
		return err
	}
	if err := d.AddRecipient(ctx, env.From); err != nil {
		d.Abort(ctx)
		return err
	}
	if err := d.Body(ctx, reply); err != nil {
		d.Abort(ctx)
		return err
	}
	if err := d.Commit(ctx); err != nil {
		return err
	}
	f.logger().Info("vacation: replied", "id", env.ID, "user", u.Address, "to", env.From)
	return nil
}

// firstField is the first field called name, unfolded, "" if none.
func firstField(msg *sieve.Message, name string) string {
	for _, f := range msg.Header {
		if strings.EqualFold(f.Name, name) {
			return strings.TrimSpace(strings.NewReplacer("\r\n", "", "\n", "").Replace(f.Value))
		}
	}
	return ""
}
