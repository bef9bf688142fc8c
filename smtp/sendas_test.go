package smtp

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// countingSigner counts the messages it is asked to sign.
type countingSigner struct{ n *atomic.Int32 }

func (s countingSigner) Sign(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error) {
	s.n.Add(1)
	return []string{"X-Signed: yes"}, nil
}

// TestSubmissionHeaderFrom: a submitted message's From and Sender
// addresses follow the rule of MAIL FROM: the user's own, forwardings
// that deliver to the user, and SendAs grants pass; anything else is
// refused 553 5.7.1 at the end of DATA (or BDAT), before the signer
// runs, and nothing is stored.
func TestSubmissionHeaderFrom(t *testing.T) {
	st := newTestStack(t)
	o := st.options(Submission)
	var signed atomic.Int32
	o.Signer = countingSigner{&signed}
	o.SendAs = map[string][]string{"ALICE@local.example": {"ceo@corp.example", "@Lists.Example"}}
	addr, _ := st.serve(o)
	long := "X-Long: " + strings.Repeat("y", 900) + "\r\n"
	long = strings.Repeat(long, 300) // a header of 270 KB before From
	for _, tc := range []struct {
		name, header, want string
	}{
		{"own", "From: Alice <alice@local.example>\r\n", "250"},
		{"own, other case and subaddress", "From: ALICE+x@Local.Example\r\nSender: alice@local.example\r\n", "250"},
		{"forwarding to alice", "From: sales@other.example\r\n", "250"},
		{"granted address", "From: \"The CEO\" <ceo@corp.example>\r\n", "250"},
		{"granted domain", "From: news@lists.example\r\n", "250"},
		{"no From", "Subject: none\r\n", "250"},
		{"another user", "From: bob@local.example\r\n", "553 5.7.1"},
		{"second address", "From: alice@local.example, bob@local.example\r\n", "553 5.7.1"},
		{"folded second address", "From: alice@local.example,\r\n bob@local.example\r\n", "553 5.7.1"},
		{"second From field", "From: alice@local.example\r\nFrom: bob@local.example\r\n", "553 5.7.1"},
		{"Sender", "From: alice@local.example\r\nSender: bob@local.example\r\n", "553 5.7.1"},
		{"space before colon", "From : bob@local.example\r\n", "553 5.7.1"},
		{"lower-case name", "from: bob@local.example\r\n", "553 5.7.1"},
		{"encoded display name", "From: =?koi8-r?B?8NLJ18XU?= <bob@local.example>\r\n", "553 5.7.1"},
		{"foreign domain", "From: alice@far.example\r\n", "553 5.7.1"},
		{"unreadable", "From: alice@local.example <\r\n", "553 5.7.1"},
		{"far down a long header", long + "From: bob@local.example\r\n", "553 5.7.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := signed.Load()
			msg := tc.header + "To: friend@far.example\r\n\r\nBody.\r\n"
			dial(t, "tcp", addr).run(tlsLogin("alice@local.example") + `
				C: MAIL FROM:<alice@local.example>
				S: 250
				C: RCPT TO:<friend@far.example>
				S: 250
				C: DATA
				S: 354
				R: ` + fmt.Sprintf("%q", msg+".\r\n") + `
				S: ` + tc.want)
			if signedNow := signed.Load() - before; (tc.want == "250") != (signedNow == 1) {
				t.Errorf("signed %d times", signedNow)
			}
		})
	}
	// BDAT takes the same path.
	msg := "From: bob@local.example\r\n\r\nx\r\n"
	dial(t, "tcp", addr).run(tlsLogin("alice@local.example") + `
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<friend@far.example>
		S: 250
		C: BDAT ` + fmt.Sprint(len(msg)) + ` LAST
		R: ` + fmt.Sprintf("%q", msg) + `
		S: 553 5.7.1`)
	// Only the messages that passed reached the queue.
	if n, want := len(st.queue.All()), 6; n != want {
		t.Errorf("queue holds %d messages, want %d", n, want)
	}
}

// TestSubmissionSendAsEnvelope: SendAs grants hold for MAIL FROM too,
// through the same rule, and only for the user they name.
func TestSubmissionSendAsEnvelope(t *testing.T) {
	st := newTestStack(t)
	o := st.options(Submission)
	o.SendAs = map[string][]string{"alice@local.example": {"ceo@corp.example", "@lists.example"}}
	addr, _ := st.serve(o)
	for _, tc := range []struct{ user, from, want string }{
		{"alice@local.example", "ceo@corp.example", "250"},
		{"alice@local.example", "Any@LISTS.example", "250"},
		{"alice@local.example", "cfo@corp.example", "553 5.7.1"},
		{"bob@local.example", "ceo@corp.example", "553 5.7.1"},
	} {
		dial(t, "tcp", addr).run(tlsLogin(tc.user) + `
			C: MAIL FROM:<` + tc.from + `>
			S: ` + tc.want)
	}
	if _, err := NewServer(Options{Target: st.router, SendAs: map[string][]string{"alice@local.example": {"not an address"}}}); err == nil {
		t.Error("NewServer took a SendAs grant that is not an address")
	}
}
