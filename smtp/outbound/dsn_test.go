package outbound

import (
	"slices"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// dsnMessage asks for every kind of DSN parameter.
func dsnMessage() *Message {
	return &Message{
		From: "alice@a.test", Recipients: []string{"bob@b.test", "carol@b.test", "dave@b.test"}, Body: bytesBody(testMsg),
		Ret: "HDRS", EnvID: "env 42+x",
		DSN: []mail.RcptDSN{
			{Notify: mail.NotifySuccess | mail.NotifyFailure, ORcptType: "rfc822", ORcpt: "Bob@b.test"},
			{Notify: mail.NotifyNever},
			{},
		},
	}
}

func TestDSNParametersPassedToHopOfferingDSN(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{DSN: true})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	res := c.Deliver(ctxT(t), mxHop("b.test"), dsnMessage())
	for _, r := range res {
		if r.Err != nil || !r.DSN {
			t.Fatalf("result %+v, want delivered with DSN", r)
		}
	}
	want := []string{
		"MAIL FROM:<alice@a.test> BODY=8BITMIME SIZE=" + itoa(len(testMsg)) + " RET=HDRS ENVID=env+2042+2Bx",
		"RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;Bob@b.test",
		"RCPT TO:<carol@b.test> NOTIFY=NEVER",
		"RCPT TO:<dave@b.test>",
	}
	if got := srv.Commands(); !slices.Equal(got, want) {
		t.Errorf("on the wire:\n%q\nwant\n%q", got, want)
	}
}

func TestDSNParametersNotSentToHopWithoutDSN(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	res := c.Deliver(ctxT(t), mxHop("b.test"), dsnMessage())
	for _, r := range res {
		if r.Err != nil || r.DSN {
			t.Fatalf("result %+v, want delivered without DSN", r)
		}
	}
	want := []string{
		"MAIL FROM:<alice@a.test> BODY=8BITMIME SIZE=" + itoa(len(testMsg)),
		"RCPT TO:<bob@b.test>",
		"RCPT TO:<carol@b.test>",
		"RCPT TO:<dave@b.test>",
	}
	if got := srv.Commands(); !slices.Equal(got, want) {
		t.Errorf("on the wire:\n%q\nwant\n%q", got, want)
	}
}
