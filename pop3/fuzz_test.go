package pop3

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/maildir"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER mrose", "PASS secret with spaces", "list 1", "TOP 1 10", "AUTH PLAIN =",
		"", " ", "RETR\t1", "NOOP\x00", "ST4T", "DELE  2 ", "é", "CAPA\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		if cmd.name == "" || strings.ToUpper(cmd.name) != cmd.name || strings.Trim(cmd.name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("%q: keyword %q", line, cmd.name)
		}
		for _, a := range cmd.args {
			if a == "" || strings.ContainsAny(a, " \t") {
				t.Fatalf("%q: argument %q", line, a)
			}
		}
		if strings.ContainsFunc(cmd.rest, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			t.Fatalf("%q: control character in %q", line, cmd.rest)
		}
		for _, a := range cmd.args {
			if n, err := parseMsgNum(a, 5); err == nil && (n < 1 || n > 5) {
				t.Fatalf("message number %q parsed as %d", a, n)
			}
		}
	})
}

// FuzzWriteMessage checks RETR's and TOP's output on any file: only CRLF
// line endings, no line that could end the response, and (for RETR) the
// file's content back once the dot-stuffing is undone.
func FuzzWriteMessage(f *testing.F) {
	f.Add([]byte("Subject: a\n\n.\n..\nbody\n"), -1)
	f.Add([]byte("a\r\nb\rc\r\r\n.\r\nno end"), 1)
	f.Add([]byte("0123456789abcde\r\n.23456789abcdef\r"), 0)
	f.Add([]byte(""), -1)
	f.Fuzz(func(t *testing.T, msg []byte, bodyLines int) {
		if bodyLines < -1 {
			bodyLines = -1
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		// The smallest buffer makes lines longer than it, and a CR at its
		// end, common.
		if err := writeMessage(w, bufio.NewReaderSize(nil, 16), bytes.NewReader(msg), bodyLines); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		got := out.Bytes()
		if len(msg) > 0 && !bytes.HasSuffix(got, []byte("\r\n")) {
			t.Fatalf("%q: output %q does not end in CRLF", msg, got)
		}
		lines := bytes.SplitAfter(got, []byte("\n"))
		var unstuffed []byte
		for _, l := range lines {
			if len(l) == 0 {
				continue
			}
			if !bytes.HasSuffix(l, []byte("\r\n")) {
				t.Fatalf("%q: line %q in %q", msg, l, got)
			}
			if bytes.Equal(l, []byte(".\r\n")) {
				t.Fatalf("%q: a line of a single dot in %q", msg, got)
			}
			if l[0] == '.' {
				if l[1] != '.' {
					t.Fatalf("%q: line %q not dot-stuffed", msg, l)
				}
				l = l[1:]
			}
			unstuffed = append(unstuffed, l...)
		}
		if bodyLines >= 0 {
			return
		}
		want := bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		if len(msg) > 0 && msg[len(msg)-1] != '\n' {
			want = append(want, "\r\n"...)
		}
		if !bytes.Equal(unstuffed, want) {
			t.Fatalf("%q sent as %q", msg, got)
		}
	})
}

// FuzzUIDLFormat parses any pop3_uidl_format; one that parses formats a
// message without panicking.
func FuzzUIDLFormat(f *testing.F) {
	for _, s := range []string{DefaultUIDLFormat, "%f", "%{uid}-%{uidvalidity}", "%XU{guid}", "%%", "%m", "%0", "%{", "%70u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		uf, err := parseUIDLFormat(format)
		if err != nil {
			return
		}
		m := maildir.Message{UID: 4294967295, Key: "1700000000.M1P1.host"}
		uf.format(4294967295, &m)
	})
}
