package imap

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/auth"
)

func TestLoginDisabledBeforeTLS(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AllowInsecureAuth = false
	_, addr := st.serve(opts)
	cl := dial(t, addr)
	caps := cl.ok("CAPABILITY")
	wantLine(t, caps, "LOGINDISABLED", "STARTTLS", "IMAP4rev2")
	if has(caps, "AUTH=PLAIN") {
		t.Fatalf("AUTH=PLAIN offered before TLS: %q", caps)
	}
	cl.expect("NO [PRIVACYREQUIRED]", "LOGIN alice@local.example %q", testPassword)
	cl.expect("NO [PRIVACYREQUIRED]", "AUTHENTICATE PLAIN %s", plainIR("alice@local.example", testPassword))

	// STARTTLS, then the same login works and LOGINDISABLED is gone.
	cl.startTLS()
	caps = cl.ok("CAPABILITY")
	if has(caps, "LOGINDISABLED") || has(caps, "STARTTLS") {
		t.Fatalf("after STARTTLS: %q", caps)
	}
	wantLine(t, caps, "AUTH=PLAIN", "AUTH=LOGIN")
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
}

func TestImplicitTLS(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AllowInsecureAuth = false
	opts.ImplicitTLS = true
	_, addr := st.serve(opts)
	cl := dialTLS(t, addr)
	caps := cl.ok("CAPABILITY")
	if has(caps, "STARTTLS") || has(caps, "LOGINDISABLED") {
		t.Fatalf("implicit TLS capabilities %q", caps)
	}
	cl.login("alice@local.example")
	cl.ok("LOGOUT")
}

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func TestAuthenticate(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())

	// SASL-IR.
	cl := dial(t, addr)
	lines := cl.ok("AUTHENTICATE PLAIN %s", plainIR("alice@local.example", testPassword))
	_ = lines
	cl.ok("SELECT INBOX")

	// PLAIN with a continuation.
	cl = dial(t, addr)
	cl.send("p1 AUTHENTICATE PLAIN")
	if l := cl.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("continuation %q", l)
	}
	cl.send(plainIR("bob@local.example", testPassword))
	if _, st := cl.until("p1"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}

	// LOGIN mechanism.
	cl = dial(t, addr)
	cl.send("l1 AUTHENTICATE LOGIN")
	cl.line()
	cl.send(base64.StdEncoding.EncodeToString([]byte("alice@local.example")))
	cl.line()
	cl.send(base64.StdEncoding.EncodeToString([]byte(testPassword)))
	if _, st := cl.until("l1"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}

	// Cancelled exchange.
	cl = dial(t, addr)
	cl.send("c1 AUTHENTICATE PLAIN")
	cl.line()
	cl.send("*")
	if _, st := cl.until("c1"); !strings.HasPrefix(st, "BAD") {
		t.Fatal(st)
	}
	cl.expect("NO", "AUTHENTICATE CRAM-MD5")
}

func TestAuthFailures(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.expect("NO [AUTHENTICATIONFAILED]", "LOGIN alice@local.example wrong")
	cl.expect("NO [AUTHENTICATIONFAILED]", "AUTHENTICATE PLAIN %s", plainIR("alice@local.example", "wrong"))
	cl.expect("NO [AUTHENTICATIONFAILED]", "LOGIN nobody@local.example wrong")
	// The third failure ends the connection.
	if l := cl.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("after 3 failures: %q", l)
	}
	if st.delays.Load() < 3 {
		t.Fatalf("failure delay applied %d times", st.delays.Load())
	}
}

// TestBadBase64Counted: a SASL response that is not base64 is answered
// BAD and counts as a failed login; the third failure ends the
// connection.
func TestBadBase64Counted(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	for i, want := range []string{"BAD", "BAD", "NO [AUTHENTICATIONFAILED]"} {
		tag := fmt.Sprintf("b%d", i)
		cl.send(tag + " AUTHENTICATE PLAIN")
		if l := cl.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("continuation %q", l)
		}
		cl.send("!!not base64!!")
		if _, got := cl.until(tag); !strings.HasPrefix(got, want) {
			t.Fatalf("bad response %d: %q, want %s", i+1, got, want)
		}
	}
	if l := cl.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("after 3 failures: %q", l)
	}
}

func TestAuthThrottled(t *testing.T) {
	st := newTestStack(t)
	st.auth.Throttle = auth.NewThrottle(auth.ThrottleConfig{NetworkLimit: 2, UserLimit: 100, BaseDelay: -1})
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.expect("NO [AUTHENTICATIONFAILED]", "LOGIN alice@local.example wrong")
	cl.expect("NO [AUTHENTICATIONFAILED]", "LOGIN alice@local.example wrong")
	// Locked out now: even the right password gets BYE.
	cl = dial(t, addr)
	cl.send("t1 LOGIN alice@local.example " + `"` + testPassword + `"`)
	var got []string
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(cl.r)
	got = strings.Split(string(b), "\r\n")
	wantLine(t, got, "* BYE")
	if has(got, "t1 OK") {
		t.Fatalf("throttled login succeeded: %q", got)
	}
}

// TestAuthenticateWithGoIMAPClient logs in with go-imap's client over
// implicit TLS through each SASL mechanism of auth.Authenticator, and
// checks the RFC 5530 codes of its failures: a wrong password is
// AUTHENTICATIONFAILED, another user's identity AUTHORIZATIONFAILED.
func TestAuthenticateWithGoIMAPClient(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.ImplicitTLS = true
	_, addr := st.serve(opts)
	for _, c := range []struct {
		name     string
		client   sasl.Client
		wantCode imap.ResponseCode // "" for success
	}{
		{"PLAIN", sasl.NewPlainClient("", "alice@local.example", testPassword), ""},
		{"LOGIN", sasl.NewLoginClient("alice@local.example", testPassword), ""},
		{"PLAIN wrong", sasl.NewPlainClient("", "alice@local.example", "wrong"), imap.ResponseCodeAuthenticationFailed},
		{"PLAIN other authzid", sasl.NewPlainClient("bob@local.example", "alice@local.example", testPassword), imap.ResponseCodeAuthorizationFailed},
	} {
		cl, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = cl.Authenticate(c.client)
		var ie *imap.Error
		switch {
		case c.wantCode == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantCode == "":
			if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
				t.Errorf("%s: SELECT after login: %v", c.name, err)
			}
		case !errors.As(err, &ie) || ie.Code != c.wantCode:
			t.Errorf("%s: %v, want NO [%s]", c.name, err, c.wantCode)
		}
		cl.Close()
	}
}
