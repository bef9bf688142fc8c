package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// failingTarget fails every message at Body with err.
type failingTarget struct{ err error }

func (f failingTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	return failingDelivery(f), nil
}

type failingDelivery struct{ err error }

func (d failingDelivery) AddRecipient(ctx context.Context, rcpt string) error { return nil }
func (d failingDelivery) Body(ctx context.Context, body mail.Body) error      { return d.err }
func (d failingDelivery) Commit(ctx context.Context) error                    { return d.err }
func (d failingDelivery) Abort(ctx context.Context) error                     { return nil }

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInternalErrorsNotInReplies: a delivery that fails with an
// internal error (a spool path and a system error) is answered with the
// fixed reply of its class, on the MX and over LMTP, while the log has
// the detail next to the session ID.
func TestInternalErrorsNotInReplies(t *testing.T) {
	st := newTestStack(t)
	const secret = "/srv/mail/DATA/queue/tmp/body-4711"
	for _, c := range []struct {
		err         error
		code, reply string
	}{
		{fmt.Errorf("queue: spool: %w", &os.PathError{Op: "write", Path: secret, Err: syscall.ENOSPC}), "452 4.3.1", "Insufficient system storage, try again later"},
		{fmt.Errorf("queue: spool: %w", &os.PathError{Op: "open", Path: secret, Err: syscall.EACCES}), "451 4.3.0", "Temporary failure, try again later"},
		{errors.New("rename " + secret + ": input/output error"), "451 4.3.0", "Temporary failure, try again later"},
	} {
		for _, role := range []Role{MX, LMTP} {
			logs := &syncBuffer{}
			o := st.options(role)
			o.Target = failingTarget{c.err}
			o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			addr, _ := st.serve(o)
			hello := map[Role]string{MX: "EHLO", LMTP: "LHLO"}[role]
			dial(t, "tcp", addr).run(`
				S: 220
				C: ` + hello + ` client.example
				S: 250` + toAlice + `
				R: "Subject: x\r\n\r\nbody\r\n.\r\n"
				S: ` + c.code + `
				H: ` + c.reply + `
				N: /srv
				N: queue
				C: QUIT
				S: 221`)
			l := logs.String()
			if !strings.Contains(l, secret) || !strings.Contains(l, "session=") {
				t.Errorf("%v: log lacks the detail or the session ID:\n%s", role, l)
			}
		}
	}
}

// TestSpoolFailureNotInReply: the server's own spool for a large
// message cannot be created (its directory is a file, which even root
// cannot write into): the client gets 451 4.3.0 and no path.
func TestSpoolFailureNotInReply(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.SpoolDir = filepath.Join(st.dir, "not-a-dir")
	if err := os.WriteFile(o.SpoolDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := st.serve(o)
	big := strings.Repeat(strings.Repeat("x", 998)+"\r\n", 1100) // over spoolMemLimit
	dial(t, "tcp", addr).run(`
		S: 220
		C: EHLO client.example
		S: 250` + toAlice + `
		R: ` + fmt.Sprintf("%q", "Subject: big\r\n\r\n"+big+".\r\n") + `
		S: 451 4.3.0 Temporary failure
		N: not-a-dir
		C: QUIT
		S: 221`)
	if got := st.messages("alice@local.example", ""); len(got) != 0 {
		t.Fatalf("alice has %d messages, want none", len(got))
	}
}
