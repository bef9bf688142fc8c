package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
)

// tlsRetry is the Code of the internal error that asks connect to try the
// same address again without STARTTLS.
const tlsRetry = -1

// maxPreTLS bounds what the server may send before TLS starts.
const maxPreTLS = 64 << 10

// startTLS runs the plaintext part of an SMTP session itself: greeting,
// EHLO with our host name, and STARTTLS when offered. go-smtp's client
// can only upgrade after an EHLO naming "localhost", so the session is
// handed over afterwards as a connection that replays a greeting; the
// client then says EHLO again, which RFC 3207 requires after TLS anyway.
func (c *Client) startTLS(ctx context.Context, raw net.Conn, host, remote string, req TLSRequirement, noTLS bool) (net.Conn, bool, *mail.Error) {
	raw.SetDeadline(time.Now().Add(c.opts.CommandTimeout))
	defer raw.SetDeadline(time.Time{})
	lr := &io.LimitedReader{R: raw, N: maxPreTLS}
	br := bufio.NewReader(lr)
	tp := textproto.NewReader(br)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, false, replyErr(err, "greeting from "+remote)
	}
	offered := false
	if _, err := fmt.Fprintf(raw, "EHLO %s\r\n", c.opts.Hostname); err != nil {
		return nil, false, temporary(4, 4, 2, "EHLO to "+remote+": "+err.Error())
	}
	_, msg, err := tp.ReadResponse(250)
	if err == nil {
		for _, l := range strings.Split(msg, "\n")[1:] {
			if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
				offered = true
			}
		}
	} else if _, ok := err.(*textproto.Error); !ok {
		return nil, false, temporary(4, 4, 2, "EHLO to "+remote+": "+err.Error())
	}
	if !offered || noTLS {
		if req != TLSOpportunistic {
			return nil, false, temporary(4, 7, 5, "TLS is required but "+remote+" does not offer STARTTLS")
		}
		// Hand over whatever is buffered behind the replay greeting.
		rest, _ := br.Peek(br.Buffered())
		return &replayConn{Conn: raw, r: io.MultiReader(strings.NewReader(replayGreeting), strings.NewReader(string(rest)), raw)}, false, nil
	}
	if _, err := io.WriteString(raw, "STARTTLS\r\n"); err != nil {
		return nil, false, temporary(4, 4, 2, "STARTTLS to "+remote+": "+err.Error())
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		if req == TLSOpportunistic {
			return nil, false, &mail.Error{Code: tlsRetry}
		}
		return nil, false, replyErr(err, "STARTTLS at "+remote)
	}
	if br.Buffered() > 0 {
		// Bytes sent before the handshake would be read as if they came
		// over TLS (the STARTTLS injection of CVE-2011-0411): refuse.
		return nil, false, temporary(4, 7, 5, remote+" sent data after its STARTTLS reply")
	}
	tc := tls.Client(raw, c.tlsConfig(host, req))
	if err := tc.HandshakeContext(ctx); err != nil {
		if req == TLSOpportunistic {
			c.log.InfoContext(ctx, "outbound: TLS handshake failed, retrying in plaintext", "remote", remote, "err", err)
			return nil, false, &mail.Error{Code: tlsRetry}
		}
		return nil, false, temporary(4, 7, 5, "TLS handshake with "+remote+": "+err.Error())
	}
	return &replayConn{Conn: tc, r: io.MultiReader(strings.NewReader(replayGreeting), tc)}, true, nil
}

// replayGreeting stands for the greeting already read, for go-smtp.
const replayGreeting = "220 resumed\r\n"

// replayConn is a connection whose first bytes read come from r.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// replyErr turns a textproto reply error into an *mail.Error.
func replyErr(err error, what string) *mail.Error {
	var te *textproto.Error
	if errors.As(err, &te) {
		se := &mail.Error{Code: te.Code, Message: te.Msg}
		if code, msg, ok := strings.Cut(te.Msg, " "); ok {
			var a, b, c int
			if n, _ := fmt.Sscanf(code, "%d.%d.%d", &a, &b, &c); n == 3 {
				se.EnhancedCode, se.Message = gosmtp.EnhancedCode{a, b, c}, msg
			}
		}
		return se
	}
	return temporary(4, 4, 2, what+": "+err.Error())
}

func newPlain(c *Credentials) sasl.Client { return sasl.NewPlainClient("", c.Username, c.Password) }
func newLogin(c *Credentials) sasl.Client { return sasl.NewLoginClient(c.Username, c.Password) }
