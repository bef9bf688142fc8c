package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailagent/mailagent/auth"
)

// sink is a go-smtp backend that keeps every message it accepts, keyed
// by Message-ID. Recipients whose local part is "fail" are refused with
// 451 at RCPT, and those named "faildata" with 451 after DATA.
type sink struct {
	mu    sync.Mutex
	msgs  map[string][]byte // Message-ID → data as received
	rcpts map[string]string // Message-ID → envelope recipient
	users []string          // AUTH PLAIN identities accepted
	tls   int               // messages received over TLS
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{sink: s, conn: c}, nil
}

type sinkSession struct {
	sink *sink
	conn *smtp.Conn
	rcpt string
}

func (s *sinkSession) Reset()                                      { s.rcpt = "" }
func (s *sinkSession) Logout() error                               { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error { return nil }

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "fail@") {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	s.rcpt = to
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if strings.HasPrefix(s.rcpt, "faildata@") {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now"}
	}
	id := headerValue(b, "Message-ID")
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.sink.msgs[id] = b
	s.sink.rcpts[id] = s.rcpt
	if _, ok := s.conn.TLSConnectionState(); ok {
		s.sink.tls++
	}
	return nil
}

func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if pass != "secret" {
			return smtp.ErrAuthFailed
		}
		s.sink.mu.Lock()
		s.sink.users = append(s.sink.users, user)
		s.sink.mu.Unlock()
		return nil
	}), nil
}

// headerValue returns the unfolded, trimmed value of the first field
// name in message b's header.
func headerValue(b []byte, name string) string {
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	return m.Header.Get(name)
}

// startSink serves a sink on 127.0.0.1:0: LMTP when lmtp is set, TLS
// from the first byte when implicitTLS is set, STARTTLS offered always.
func startSink(t *testing.T, lmtp, implicitTLS bool) (*sink, string) {
	t.Helper()
	if implicitTLS {
		return serveSink(t, lmtp, "tls")
	}
	return serveSink(t, lmtp, "tcp")
}

// serveSink serves a sink on network "tcp" (127.0.0.1:0), "tls" (the
// same, TLS from the first byte) or "unix" (a socket in a temporary
// directory, returned as "unix:PATH").
func serveSink(t *testing.T, lmtp bool, network string) (*sink, string) {
	t.Helper()
	certFile, keyFile, err := auth.SelfSigned(t.TempDir(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	s := &sink{msgs: map[string][]byte{}, rcpts: map[string]string{}}
	srv := smtp.NewServer(s)
	srv.LMTP = lmtp
	srv.Domain = "sink.test"
	srv.TLSConfig = tc
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	var l net.Listener
	addr := ""
	switch network {
	case "tls":
		l, err = tls.Listen("tcp", "127.0.0.1:0", tc)
	case "unix":
		path := filepath.Join(t.TempDir(), "lmtp")
		l, err = net.Listen("unix", path)
		addr = "unix:" + path
	default:
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = l.Addr().String()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s, addr
}

// checkRecord checks that every line of record names a message the sink
// holds, whose body hashes to the recorded value, and returns the count.
func checkRecord(t *testing.T, s *sink, record string) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	sc := bufio.NewScanner(strings.NewReader(record))
	for sc.Scan() {
		id, hash, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("record line %q", sc.Text())
		}
		b, ok := s.msgs[id]
		if !ok {
			t.Fatalf("recorded %s, which the server does not hold", id)
		}
		_, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != hash {
			t.Fatalf("%s: body received does not hash to the recorded %s", id, hash)
		}
		n++
	}
	return n
}

// lockedBuffer is a record the test reads while it may be written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestRunSMTP(t *testing.T) {
	s, addr := startSink(t, false, false)
	var rec lockedBuffer
	cfg := &config{
		addr: addr, conns: 3, total: 20, size: 3000, from: "load@client.test",
		to: []string{"a@sink.test", "b@sink.test"}, perConn: 4, ehlo: "client.test",
		timeout: 5 * time.Second, record: &rec,
	}
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 20 || res.Failed != 0 || res.Interrupted {
		t.Fatalf("sent %d, failed %d (%v), interrupted %v; want 20 sent", res.Sent, res.Failed, res.Errors, res.Interrupted)
	}
	if res.Sessions < 5 {
		t.Errorf("%d sessions for 20 messages at 4 per connection", res.Sessions)
	}
	if res.Bytes != 20*3000 {
		t.Errorf("%d bytes counted, want %d", res.Bytes, 20*3000)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency %+v", res.Latency)
	}
	if n := checkRecord(t, s, rec.String()); n != 20 {
		t.Errorf("%d record lines, want 20", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) != 20 {
		t.Fatalf("server holds %d messages, want 20", len(s.msgs))
	}
	for id, b := range s.msgs {
		if len(b) != 3000 {
			t.Errorf("%s: %d bytes received, want 3000", id, len(b))
		}
		if to := headerValue(b, "To"); to != "<"+s.rcpts[id]+">" {
			t.Errorf("%s: To %s, envelope recipient %s", id, to, s.rcpts[id])
		}
	}
}

func TestRunLMTP(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) { testRunLMTP(t, network) })
	}
}

func testRunLMTP(t *testing.T, network string) {
	s, addr := serveSink(t, true, network)
	record := filepath.Join(t.TempDir(), "acked")
	var out, errOut bytes.Buffer
	code := realMain(context.Background(), []string{
		"-addr", addr, "-lmtp", "-c", "4", "-n", "16", "-size", "5000",
		"-to", "x@sink.test", "-json", "-record", record,
	}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Protocol != "lmtp" || res.Sent != 16 || res.Failed != 0 || res.Bytes != 16*5000 {
		t.Fatalf("result %+v", res)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if n := checkRecord(t, s, string(b)); n != 16 {
		t.Errorf("%d record lines, want 16", n)
	}
}

// TestRunFailures has the server refuse two messages in three, at RCPT
// and after DATA: they count as failed, the session goes on, nothing
// refused is recorded, and the exit status says so.
func TestRunFailures(t *testing.T) {
	s, addr := startSink(t, false, false)
	record := filepath.Join(t.TempDir(), "acked")
	var out, errOut bytes.Buffer
	code := realMain(context.Background(), []string{
		"-addr", addr, "-c", "2", "-n", "12", "-size", "2000", "-json", "-record", record,
		"-to", "ok@sink.test,fail@sink.test,faildata@sink.test",
	}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s%s", code, out.String(), errOut.String())
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Sent != 4 || res.Failed != 8 || res.Sessions != 2 {
		t.Fatalf("sent %d, failed %d, %d sessions; want 4, 8, 2", res.Sent, res.Failed, res.Sessions)
	}
	if len(res.Errors) != maxErrors {
		t.Fatalf("%d errors kept, want %d: %q", len(res.Errors), maxErrors, res.Errors)
	}
	var rcpt, data bool
	for _, e := range res.Errors {
		rcpt = rcpt || strings.Contains(e, "RCPT") && strings.Contains(e, "451")
		data = data || strings.Contains(e, "end of DATA") && strings.Contains(e, "451")
	}
	if !rcpt || !data {
		t.Errorf("errors %q: want 451 at RCPT and at the end of DATA", res.Errors)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if n := checkRecord(t, s, string(b)); n != 4 {
		t.Errorf("%d record lines, want 4", n)
	}
}

// TestRunTLS sends over STARTTLS and over implicit TLS with AUTH PLAIN.
func TestRunTLS(t *testing.T) {
	for _, mode := range []string{"-starttls", "-tls"} {
		t.Run(mode, func(t *testing.T) {
			s, addr := startSink(t, false, mode == "-tls")
			var out, errOut bytes.Buffer
			code := realMain(context.Background(), []string{
				"-addr", addr, mode, "-insecure", "-auth", "joe@sink.test:secret",
				"-n", "3", "-c", "1", "-msgs-per-conn", "2", "-to", "x@sink.test",
			}, &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.msgs) != 3 || s.tls != 3 {
				t.Fatalf("%d messages, %d over TLS; want 3 over TLS", len(s.msgs), s.tls)
			}
			if len(s.users) != 2 || s.users[0] != "joe@sink.test" {
				t.Fatalf("AUTH as %q, want joe@sink.test on both connections", s.users)
			}
		})
	}
}

// TestRunTimeout points the tool at a server that accepts and never
// speaks: the greeting's deadline ends the wait.
func TestRunTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := &config{addr: l.Addr().String(), conns: 1, total: 2, size: 1000, from: "a@b",
		to: []string{"c@d"}, ehlo: "client.test", timeout: 100 * time.Millisecond}
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 0 || res.Failed != 2 || !strings.Contains(res.Errors[0], "timeout") {
		t.Fatalf("sent %d, failed %d, errors %q; want 2 timeouts", res.Sent, res.Failed, res.Errors)
	}
}

// TestRunInterrupted cancels the run at the first acknowledgement: the
// workers stop, and the result says how far they got.
func TestRunInterrupted(t *testing.T) {
	_, addr := startSink(t, false, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &config{addr: addr, conns: 2, total: 1000, size: 1000, from: "a@sink.test",
		to: []string{"b@sink.test"}, ehlo: "client.test", timeout: 5 * time.Second,
		record: cancelWriter(cancel)}
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Sent < 1 || res.Sent > 2 || res.Failed != 0 {
		t.Fatalf("interrupted %v, sent %d, failed %d; want 1 or 2 sent", res.Interrupted, res.Sent, res.Failed)
	}
}

// cancelWriter cancels on its first write.
type cancelWriter context.CancelFunc

func (c cancelWriter) Write(p []byte) (int, error) {
	c()
	return len(p), nil
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-auth", "u:p"},
		{"-tls", "-starttls"},
		{"-c", "0"},
		{"-to", ","},
		{"-starttls", "-auth", "nopass"},
		{"stray"},
	} {
		var out, errOut bytes.Buffer
		if code := realMain(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}

// TestMessageShape checks the generated messages over a range of sizes:
// exact size, CRLF only, short lines, no leading dot, a body that
// matches its hash field, and unique bodies.
func TestMessageShape(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seen := map[string]bool{}
	for size := range 800 {
		m := newMessage("run", size, "a@b.test", "c@d.test", "e.test", size, now)
		smallest := len(newMessage("run", size, "a@b.test", "c@d.test", "e.test", 0, now).data)
		want := max(size, smallest)
		if size == smallest+1 {
			want++ // a body line cannot be 1 byte long
		}
		if len(m.data) != want {
			t.Fatalf("size %d: message of %d bytes, want %d", size, len(m.data), want)
		}
		if seen[m.hash] {
			t.Fatalf("size %d: body repeats another message's", size)
		}
		seen[m.hash] = true
		if got := headerValue(m.data, bodyHashField); got != m.hash {
			t.Fatalf("size %d: %s %q, body hashes to %s", size, bodyHashField, got, m.hash)
		}
		if headerValue(m.data, "Message-ID") != m.id {
			t.Fatalf("size %d: Message-ID %q, want %s", size, headerValue(m.data, "Message-ID"), m.id)
		}
		for i, l := range strings.Split(string(m.data), "\r\n") {
			if strings.ContainsAny(l, "\r\n") || len(l) > 78 || strings.HasPrefix(l, ".") {
				t.Fatalf("size %d, line %d %q: bare CR/LF, over 78 or leading dot", size, i, l)
			}
		}
		if !bytes.HasSuffix(m.data, []byte("\r\n")) {
			t.Fatalf("size %d: no final CRLF", size)
		}
	}
	if m := newMessage("run", 7, "a@b.test", "c@d.test", "e.test", 10240, now); len(m.data) != 10240 {
		t.Fatalf("10240 asked, %d made", len(m.data))
	}
}
