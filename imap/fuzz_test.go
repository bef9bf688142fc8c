package imap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// FuzzMessageContent feeds arbitrary bytes through what FETCH and
// SEARCH do with a message file: the CRLF conversion, the envelope, body
// structure and section extraction, and the text search.
func FuzzMessageContent(f *testing.F) {
	f.Add([]byte(testMessage))
	f.Add([]byte(multipartMessage))
	f.Add([]byte("Subject: bare\n\nLF only\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := toCRLF(data)
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d", i)
			}
		}
		if !bytes.Equal(bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))) {
			t.Fatal("conversion changed more than line endings")
		}
		r := bytes.NewReader(out)
		imapserver.ExtractBodyStructure(r)
		for _, bs := range []*imap.FetchItemBodySection{
			{Specifier: imap.PartSpecifierHeader},
			{Specifier: imap.PartSpecifierText},
			{Part: []int{1}, Specifier: imap.PartSpecifierMIME},
			{Part: []int{1, 2}},
			{HeaderFields: []string{"Subject"}},
			{Partial: &imap.SectionPartial{Offset: 3, Size: 10}},
		} {
			r.Seek(0, io.SeekStart)
			imapserver.ExtractBodySection(r, bs)
		}
		for _, part := range [][]int{nil, {1}, {2, 1}} {
			r.Seek(0, io.SeekStart)
			binarySection(r, part, &imap.SectionPartial{Offset: 1, Size: 5})
		}
		mc := &matchContext{raw: out}
		mc.matchText("inner", true)
		mc.matchText("body", false)
	})
}

// FuzzSession sends arbitrary input to a logged-in session with INBOX
// selected; the server must neither panic nor stop serving.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"a FETCH 1:* (BODY[1.2.MIME] BINARY[1] ENVELOPE BODYSTRUCTURE)",
		"a UID SEARCH OR (FROM x BODY y) NOT (SENTBEFORE 1-Jan-2020) 1:*",
		"a STORE 1 +FLAGS (\\Seen $kw)",
		"a APPEND INBOX {5+}\r\nhello",
		"a CREATE \"a.b..c\"",
		"a RENAME INBOX &AGE-",
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" \"%\") RETURN (CHILDREN STATUS (SIZE))",
		"a MOVE $ Trash",
		"a IDLE\r\nDONE",
	} {
		f.Add([]byte(s))
	}
	st := newTestStack(f)
	st.deliver("alice@local.example", "INBOX", testMessage)
	st.deliver("alice@local.example", "INBOX", multipartMessage)
	var panics atomic.Int32
	opts := st.options()
	opts.Logger = slog.New(panicCatcher{&panics})
	opts.MaxConnsPerUser = 1000
	opts.MaxConnsPerIP = 1000
	_, addr := st.serve(opts)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "l LOGIN alice@local.example %q\r\ns SELECT INBOX\r\n", testPassword)
		readUntil(t, br, "s ")
		c.Write(data)
		c.Write([]byte("\r\nDONE\r\nzz LOGOUT\r\n"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		io.Copy(io.Discard, br)
		if n := panics.Load(); n > 0 {
			t.Fatalf("server panicked on %q", data)
		}
		// The server still serves.
		c2, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c2, "n NOOP\r\n")
		readUntil(t, bufio.NewReader(c2), "n OK")
	})
}

func readUntil(t *testing.T, br *bufio.Reader, prefix string) {
	t.Helper()
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(l, prefix) {
			return
		}
	}
}

// panicCatcher counts log records about panics, which imapserver
// recovers and logs.
type panicCatcher struct{ n *atomic.Int32 }

func (p panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (p panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p panicCatcher) WithGroup(string) slog.Handler      { return p }
