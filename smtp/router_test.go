// These tests drive the router through SMTP and LMTP sessions: they check
// what the server answers (per-recipient LMTP replies, submission's
// signing) for routes the router picks. The routing itself is tested
// without a server in smtp/router.

package smtp

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// hopTarget is an embedder's next hop for the transport table: it
// records which transport each message went through and fails the
// recipients named in fail after the body, as an LMTP client would
// report them.
type hopTarget struct {
	smtptest.Recorder
	spec string
	fail map[string]bool
}

func (h *hopTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	d, _ := h.Recorder.Start(ctx, env)
	return &hopDelivery{Delivery: d.(*smtptest.Delivery), h: h}, nil
}

type hopDelivery struct {
	*smtptest.Delivery
	h *hopTarget
}

func (d *hopDelivery) BodyNonAtomic(ctx context.Context, status mail.StatusCollector, body mail.Body) {
	err := d.Body(ctx, body)
	for _, r := range d.Rcpts {
		switch {
		case err != nil:
			status.SetStatus(r, err)
		case d.h.fail[r]:
			status.SetStatus(r, &mail.Error{Code: 550, EnhancedCode: [3]int{5, 1, 1}, Message: "no such user here"})
		default:
			status.SetStatus(r, nil)
		}
	}
}

func TestRouterTransportTable(t *testing.T) {
	st := newTestStack(t)
	ctx := context.Background()
	for d, spec := range map[string]string{
		"other.example":   "lmtp:[127.0.0.1]:2424",
		"relayed.example": "smtp:[192.0.2.1]:587",
		"mx.example":      "smtp:",
	} {
		if err := st.db.SetTransport(ctx, d, spec); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	hops := map[string]*hopTarget{}
	transports := router.TransportsFunc(func(ctx context.Context, tr store.Transport) (mail.Target, error) {
		mu.Lock()
		defer mu.Unlock()
		k := tr.String()
		if hops[k] == nil {
			hops[k] = &hopTarget{spec: k, fail: map[string]bool{"gone@relayed.example": true}}
		}
		return hops[k], nil
	})
	r, err := router.New(router.Options{Directory: st.db, Local: st.local, Queue: st.queue, Transports: transports})
	if err != nil {
		t.Fatal(err)
	}
	st.router = r
	addr, _ := st.serve(st.options(LMTP))
	dial(t, "tcp", addr).run(`
		S: 220
		C: LHLO postfix.local
		S: 250
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<carol@other.example>
		S: 250
		C: RCPT TO:<sales@other.example>
		S: 250
		C: RCPT TO:<x@relayed.example>
		S: 250
		C: RCPT TO:<gone@relayed.example>
		S: 250
		C: RCPT TO:<y@mx.example>
		S: 250
		C: RCPT TO:<y@unlisted.example>
		S: 554 5.7.1
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", testMessage+".\r\n") + `
		S: 250 2.0.0 <carol@other.example>
		S: 250 2.0.0 <sales@other.example>
		S: 250 2.0.0 <x@relayed.example>
		S: 550 5.1.1 <gone@relayed.example>
		S: 250 2.0.0 <y@mx.example>`)

	lmtp := hops["lmtp:127.0.0.1:2424"].All()
	if len(lmtp) != 1 || strings.Join(lmtp[0].Rcpts, ",") != "carol@other.example" {
		t.Errorf("LMTP hop got %+v, want carol's mail (a local user of a domain routed by LMTP)", lmtp)
	}
	relay := hops["smtp:[192.0.2.1]:587"].All()
	if len(relay) != 1 || strings.Join(relay[0].Rcpts, ",") != "x@relayed.example,gone@relayed.example" {
		t.Errorf("SMTP hop got %+v", relay)
	}
	q := st.queue.All()
	if len(q) != 1 || strings.Join(q[0].Rcpts, ",") != "y@mx.example" {
		t.Errorf("queue got %+v, want y@mx.example (smtp: without a host is MX routing)", q)
	}
	// sales@other.example forwards to alice in local.example, which has
	// no transport entry: her Maildir.
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
}

func TestSubmissionSignerAndImplicitTLS(t *testing.T) {
	st := newTestStack(t)
	o := st.options(Submission)
	o.ImplicitTLS = true
	o.Signer = signer{}
	addr, _ := st.serve(o)
	c := dial(t, "tcp", addr)
	c.startTLS()
	c.run(`
		S: 220
		C: EHLO laptop
		S: 250
		N: STARTTLS
		H: AUTH PLAIN LOGIN
		C: AUTH PLAIN ` + plainIR("alice@local.example", testPassword) + `
		S: 235
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: DATA
		S: 354
		R: "Subject: signed\r\n\r\nx\r\n.\r\n"
		S: 250`)
	got := st.messages("bob@local.example", "")
	if len(got) != 1 || !strings.Contains(got[0], "\r\nX-Signature: 4 fields, Received first\r\nReceived: ") {
		t.Fatalf("got %q", got)
	}
}

// signer stands in for DKIM: it reports what it was given to sign.
type signer struct{}

func (signer) Sign(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error) {
	r, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := scanHeaderFrom(r)
	return []string{fmt.Sprintf("X-Signature: %d fields, Received first", h)}, nil
}

// scanHeaderFrom counts header fields of the message in r and checks
// that Received comes first.
func scanHeaderFrom(r io.Reader) int {
	b, _ := io.ReadAll(r)
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	if !strings.HasPrefix(head, "Received: ") {
		return -1
	}
	fields := 0
	for _, l := range strings.Split(head, "\r\n") {
		if l != "" && l[0] != '\t' && l[0] != ' ' {
			fields++
		}
	}
	return fields
}
