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
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/mimetree"
	"github.com/mailagent/mailagent/maildir"
)

// FuzzMessageContent feeds arbitrary bytes through what FETCH and
// SEARCH do with a message file: the CRLF conversion, the envelope, body
// structure and section extraction, and the text search.
func FuzzMessageContent(f *testing.F) {
	f.Add([]byte(testMessage))
	f.Add([]byte(multipartMessage))
	f.Add([]byte("Subject: bare\n\nLF only\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n--x--\r\n"))
	f.Add([]byte("Date: Sun, 01 Mar 2026 23:30:00 -0500\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\r\nContent-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=A3=F3d=BC\r\n"))
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
		tree, err := mimetree.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		bodyStructure(tree)
		for _, bs := range []*imap.FetchItemBodySection{
			{Specifier: imap.PartSpecifierHeader},
			{Specifier: imap.PartSpecifierText},
			{Part: []int{1}, Specifier: imap.PartSpecifierMIME},
			{Part: []int{1, 2}},
			{HeaderFields: []string{"Subject"}},
			{Partial: &imap.SectionPartial{Offset: 3, Size: 10}},
		} {
			if _, err := bodySection(r, tree, bs); err != nil {
				t.Fatal(err)
			}
		}
		for _, part := range [][]int{nil, {1}, {2, 1}} {
			binarySection(r, tree, part, &imap.SectionPartial{Offset: 1, Size: 5})
		}
		mc := &matchContext{m: &maildir.Message{}}
		mc.setRaw(out)
		mc.matchText("inner", true)
		mc.matchText("body", false)
		mc.match(&imapwire.SearchCriteria{
			Header:    []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "x"}, {Key: "X-Missing"}},
			SentSince: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		})
	})
}

// FuzzSearchString converts arbitrary bytes from a named charset as
// SEARCH does with its strings: any result is UTF-8, and case folding
// is idempotent on it.
func FuzzSearchString(f *testing.F) {
	for _, seed := range []struct{ charset, s string }{
		{"UTF-8", "stra\u00dfe"},
		{"ISO-8859-1", "K\xf6ln"},
		{"ISO-2022-JP", "\x1b$B%F%9%H\x1b(B"},
		{"Shift_JIS", "\x83e\x83X\x83g"},
		{"GB18030", "\x81\x30\x81\x30"},
		{"UTF-16", "\x00a"},
		{"KOI8-R", "\xf0\xd2\xc9\xd7\xc5\xd4"},
		{"", "\xff"},
	} {
		f.Add(seed.charset, []byte(seed.s))
	}
	f.Fuzz(func(t *testing.T, charset string, data []byte) {
		enc, err := searchEncoding(charset)
		if err != nil {
			if err != errBadCharset {
				t.Fatalf("searchEncoding(%q): %v", charset, err)
			}
			return
		}
		out, err := decodeSearchString(enc, string(data))
		if err != nil {
			return
		}
		if !utf8.ValidString(out) {
			t.Fatalf("%q from %s gave invalid UTF-8 %q", data, charset, out)
		}
		if f := foldString(out); foldString(f) != f {
			t.Fatalf("folding %q is not idempotent: %q, %q", out, f, foldString(f))
		}
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
		"a SEARCH CHARSET UTF-8 TEXT {6+}\r\nstra\xc3\x9f NOT NOT NOT (OR SENTON 1-Mar-2026 LARGER 10)",
		"a SEARCH RETURN (SAVE MIN) " + strings.Repeat("NOT ", 70) + "ALL",
		"a CREATE &Jjo",
		"a SELECT \"~/..\"",
		"a IDLE\r\nDONE",
		"a LOGIN {5}\r\nb LOGIN x {3+}\r\npw!\r\nc AUTHENTICATE PLAIN\r\n" + strings.Repeat("A", 60<<10) + "\r\nd NOOP",
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

// panicCatcher counts log records about panics, which the server
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

// FuzzBase64BinaryParts: the rewrite of a literal8 APPEND's binary parts
// never panics, changes nothing in a message that names no binary part,
// leaves nothing to change when run on its own output, and gives a
// single binary part's bytes back through the BINARY decoder.
func FuzzBase64BinaryParts(f *testing.F) {
	f.Add([]byte("Content-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\n\r\n\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\npre\n--b\nContent-Transfer-Encoding: BINARY\n\n\x00\n--b\r\n\r\ntext\n--b--\nepi"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=\"x\"\r\n\r\n--x\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\x00\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := base64BinaryParts(msg)
		if !bytes.Contains(bytes.ToLower(msg), []byte("binary")) && !bytes.Equal(out, msg) {
			t.Fatalf("changed a message without binary parts: %q", out)
		}
		if again := base64BinaryParts(out); !bytes.Equal(again, out) {
			t.Fatalf("second pass changed %q into %q", out, again)
		}
		const head = "Content-Transfer-Encoding: binary\r\n\r\n"
		if body, ok := bytes.CutPrefix(msg, []byte(head)); ok {
			enc, ok := bytes.CutPrefix(out, []byte("Content-Transfer-Encoding: base64\r\n\r\n"))
			if !ok || !bytes.Equal(decodeBase64Lenient(enc), body) {
				t.Fatalf("%q became %q", msg, out)
			}
		}
	})
}
