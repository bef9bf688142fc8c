// Package smtptest holds what the tests of the smtp packages share: a
// Target that records the messages committed to it, the messages of a
// Maildir folder read from disk, and one message delivered to several
// recipients through a Target.
package smtptest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// Message is a message committed to a Recorder.
type Message struct {
	From  string
	Rcpts []string
	Data  string
}

// Recorder is a Target standing in for the outbound queue (or any next
// hop): it keeps the messages committed to it in memory. The zero value
// is ready to use.
type Recorder struct {
	mu   sync.Mutex
	msgs []Message
}

// Start implements mail.Target.
func (r *Recorder) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	return &Delivery{r: r, env: env}, nil
}

// All returns the messages committed so far, oldest first.
func (r *Recorder) All() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// Reset forgets the messages committed so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = nil
}

// Delivery is a Recorder's delivery: the message is recorded when
// committed.
type Delivery struct {
	r     *Recorder
	env   *mail.Envelope
	Rcpts []string // as added
	data  string
}

// AddRecipient implements mail.Delivery: every recipient is taken.
func (d *Delivery) AddRecipient(ctx context.Context, rcpt string) error {
	d.Rcpts = append(d.Rcpts, rcpt)
	return nil
}

// Body implements mail.Delivery.
func (d *Delivery) Body(ctx context.Context, body mail.Body) error {
	rc, err := body.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	d.data = string(b)
	return err
}

// Commit implements mail.Delivery: the message is recorded.
func (d *Delivery) Commit(ctx context.Context) error {
	d.r.mu.Lock()
	d.r.msgs = append(d.r.msgs, Message{From: d.env.From, Rcpts: d.Rcpts, Data: d.data})
	d.r.mu.Unlock()
	return nil
}

// Abort implements mail.Delivery: nothing is recorded.
func (d *Delivery) Abort(ctx context.Context) error { return nil }

// Messages returns the content of every message in the Maildir folder
// dir (its new/ and cur/), in file name order; a folder not made yet
// has none.
func Messages(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			names = append(names, filepath.Join(dir, sub, e.Name()))
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// Deliver delivers msg for env to rcpts through target, all or nothing
// as over SMTP: every recipient added, the body, then Commit. Any
// failure fails the test.
func Deliver(t testing.TB, target mail.Target, env *mail.Envelope, rcpts []string, msg string) {
	t.Helper()
	ctx := context.Background()
	d, err := target.Start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := d.AddRecipient(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Body(ctx, mail.BytesBody([]byte(msg))); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
