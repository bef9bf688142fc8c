// Package outboundtest provides a recording SMTP and LMTP peer on
// loopback for tests of outbound delivery: a real go-smtp server whose
// replies a test chooses per recipient, which keeps every message it
// accepts and lets the test wait for them.
package outboundtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Options configures a Server.
type Options struct {
	// Domain is the name in the greeting; "peer.test" if empty.
	Domain string
	// LMTP makes the server speak LMTP.
	LMTP bool
	// Unix listens on a Unix socket in a temporary directory instead of
	// 127.0.0.1:0.
	Unix bool
	// Addr, when set, is the loopback address to listen on, e.g. the
	// address of an earlier Server, to bring a peer "back up".
	Addr string
	// TLS, when set, is offered with STARTTLS (or used from the first
	// byte when ImplicitTLS is set).
	TLS         *tls.Config
	ImplicitTLS bool
	// Users enables AUTH PLAIN and LOGIN with these user names and
	// passwords.
	Users map[string]string
	// SMTPUTF8 advertises SMTPUTF8.
	SMTPUTF8 bool
	// DSN advertises DSN (RFC 3461).
	DSN bool
	// MaxSize advertises and enforces SIZE when positive.
	MaxSize int64
	// RcptReply, when set, answers RCPT: nil accepts.
	RcptReply func(rcpt string) error
	// DataReply, when set, answers the end of DATA; over LMTP it is asked
	// once per recipient.
	DataReply func(rcpt string) error
	// Discard keeps only a count of messages, not their content.
	Discard bool
}

// Message is one accepted message as the server saw it.
type Message struct {
	From string
	To   []string
	Data []byte
	Helo string
	TLS  bool
	User string // authenticated user, if any
	Path string // the copy written under Server.Dir
}

// Server is a running peer.
type Server struct {
	// Addr is the address to connect to (host:port, or the socket path).
	Addr string
	// Port is the TCP port, 0 for a Unix socket.
	Port int
	// Dir holds one file per accepted message.
	Dir string

	opts    Options
	srv     *gosmtp.Server
	mu      sync.Mutex
	msgs    []Message
	count   int
	changed chan struct{}
	conns   int
	wire    wireLog
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, Dir: t.TempDir(), changed: make(chan struct{})}
	if opts.Domain == "" {
		opts.Domain = "peer.test"
	}
	srv := gosmtp.NewServer(backend{s})
	srv.Domain = opts.Domain
	srv.LMTP = opts.LMTP
	srv.EnableSMTPUTF8 = opts.SMTPUTF8
	srv.EnableDSN = opts.DSN
	srv.Debug = &s.wire
	srv.MaxMessageBytes = opts.MaxSize
	srv.MaxRecipients = 1000
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = nopLogger{}
	if !opts.ImplicitTLS {
		srv.TLSConfig = opts.TLS
	}
	var ln net.Listener
	var err error
	if opts.Unix {
		path := filepath.Join(t.TempDir(), "lmtp.sock")
		ln, err = net.Listen("unix", path)
		s.Addr = path
	} else {
		addr := opts.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			s.Addr = ln.Addr().String()
			s.Port = ln.Addr().(*net.TCPAddr).Port
		}
	}
	if err != nil {
		t.Fatalf("outboundtest: listen: %v", err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, opts.TLS)
	}
	s.opts = opts
	s.srv = srv
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s
}

// Commands returns the MAIL and RCPT commands received, as they came
// on the wire (without CRLF), oldest first.
func (s *Server) Commands() []string { return s.wire.commands() }

// wireLog keeps the envelope commands of go-smtp's debug copy of the
// traffic, which interleaves both directions: replies start with a
// digit, so they never match.
type wireLog struct {
	mu      sync.Mutex
	partial []byte
	cmds    []string
}

func (w *wireLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
		if u := strings.ToUpper(line); strings.HasPrefix(u, "MAIL FROM:") || strings.HasPrefix(u, "RCPT TO:") {
			w.cmds = append(w.cmds, line)
		}
	}
	if len(w.partial) > 1<<16 {
		// A DATA line this long is none of the log's business.
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

func (w *wireLog) commands() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.cmds)
}

// Close stops the server and drops its connections.
func (s *Server) Close() error { return s.srv.Close() }

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count returns how many messages were accepted.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Connections returns how many connections were opened so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Wait blocks until at least n messages were accepted, or fails the test
// after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		c, ch := s.count, s.changed
		s.mu.Unlock()
		if c >= n {
			return s.Messages()
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("outboundtest: %d messages after %v, want %d", c, timeout, n)
		}
	}
}

// Changed returns a channel closed at the next accepted message.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) store(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.Discard {
		m.Path = filepath.Join(s.Dir, strconv.Itoa(len(s.msgs))+".eml")
		if err := os.WriteFile(m.Path, m.Data, 0o600); err != nil {
			return err
		}
		s.msgs = append(s.msgs, m)
	}
	s.count++
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.s.mu.Lock()
	b.s.conns++
	b.s.mu.Unlock()
	return &session{s: b.s, c: c}, nil
}

type session struct {
	s    *Server
	c    *gosmtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Users == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if p, ok := ss.s.opts.Users[user]; ok && p == pass {
			ss.user = user
			return nil
		}
		return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, errors.New("unsupported mechanism")
}

func (ss *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if ss.s.opts.Users != nil && ss.user == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if ss.s.opts.RcptReply != nil {
		if err := ss.s.opts.RcptReply(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) message(data []byte, to []string) Message {
	_, isTLS := ss.c.TLSConnectionState()
	return Message{From: ss.from, To: to, Data: data, Helo: ss.c.Hostname(), TLS: isTLS, User: ss.user}
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.opts.DataReply != nil {
		if err := ss.s.opts.DataReply(""); err != nil {
			return err
		}
	}
	return ss.s.store(ss.message(data, append([]string(nil), ss.to...)))
}

func (ss *session) LMTPData(r io.Reader, status gosmtp.StatusCollector) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var ok []string
	for _, rc := range ss.to {
		var e error
		if ss.s.opts.DataReply != nil {
			e = ss.s.opts.DataReply(rc)
		}
		if e == nil {
			ok = append(ok, rc)
		}
		status.SetStatus(rc, e)
	}
	if len(ok) > 0 {
		return ss.s.store(ss.message(bytes.Clone(data), ok))
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}
