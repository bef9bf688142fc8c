package imapwire

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// FuzzReader: any input is read command by command to its end without
// a panic; each refusal is BAD or NO with its tag; each call makes
// progress; memory held is bounded by the limits.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"a LOGIN alice pw\r\n",
		"a SELECT INBOX (QRESYNC (1 2 1:10 (1:3 5:7)))\r\n",
		"a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.10> BINARY[1]) (CHANGEDSINCE 5 VANISHED)\r\n",
		"a SEARCH RETURN (MIN) CHARSET UTF-8 OR NOT (FROM {1+}\r\nx) 1:3 SINCE 1-Jan-2020\r\n",
		"a APPEND INBOX (\\Seen) {3+}\r\nabc (\\Draft) CATENATE (URL x TEXT {1+}\r\ny)\r\n",
		"a LIST (SUBSCRIBED) \"\" (% *) RETURN (STATUS (MESSAGES))\r\n",
		"a STORE 1 (UNCHANGEDSINCE 3) +FLAGS ( Project_X)\r\n",
		"a UID SORT RETURN (COUNT) (REVERSE DATE) UTF-8 ALL\r\nb THREAD REFS UTF-8 $\r\n",
		"a ID (\"name\" NIL)\r\nb ENABLE UTF8=ACCEPT\r\nc CREATE \"&AMQ-rger &- Co\"\r\n",
		"a SEARCH " + strings.Repeat("(", 100) + "\r\n",
		"a LOGIN {5000+}\r\n",
		"a UID REPLACE 4 INBOX CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT ~{3+}\r\na\x00b)\r\nb REPLACE * Drafts (\\Draft) {1+}\r\nx\r\n",
		"a ENABLE UIDONLY\r\nb UID FETCH 1:* (UID FLAGS)\r\nc CREATE Sent2 (USE (\\Sent))\r\n",
		"a NOTIFY SET (STATUS) (selected (MessageNew (UID PREVIEW (LAZY)) MessageExpunge)) (subtree (INBOX {4+}\r\nWork) (MessageNew MessageExpunge FlagChange)) (personal NONE)\r\nb NOTIFY NONE\r\n",
		"a FETCH 1:* (SNIPPET (LAZY=FUZZY) PREVIEW (FUZZY))\r\n",
		"a UID SEARCH RETURN (UPDATE PARTIAL -1:-20 COUNT) OR SEEN SUBJECT x\r\nb SORT RETURN (PARTIAL 3:1) (DATE) UTF-8 ALL\r\nc CANCELUPDATE \"a\" b\r\n",
		"a SEARCH YOUNGER 60 OR OLDER 3600 SAVEDON 7-Dec-2026 NOT SAVEDBEFORE 1-Jan-2020 SAVEDSINCE 1-Jan-2020 SAVEDATESUPPORTED\r\nb FETCH 1 SAVEDATE\r\n",
		"a LOGIN {5}\r\nb LOGIN x {5+}\r\nsecre\r\nc UID FETCH 1 BODY[HEADER.FIELDS ({4}\r\nd NOOP " + strings.Repeat("x", 1100) + "\r\ne NOOP\r\n",
	} {
		f.Add([]byte(s), false, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, utf8Names, literalPlus bool) {
		conts := 0
		r := NewReader(bufio.NewReaderSize(strings.NewReader(string(in)), 64), func() error { conts++; return nil })
		r.UTF8 = utf8Names
		r.Limits = Limits{MaxLine: 1 << 10, MaxLiteral: 256, MaxLiterals: 1 << 10, AppendLimit: 1 << 10, MaxSearchDepth: 8, MaxSetRanges: 50, LiteralPlus: literalPlus}
		// For one input in four, commands with names of odd length
		// (LOGIN, FETCH, STORE) are refused as the connection's state
		// would: before any of their literals is asked for.
		checked := false
		r.Check = func(name string, uid bool) *Error {
			if len(in)%4 != 0 || len(name)%2 == 0 {
				return nil
			}
			checked = true
			return &Error{Type: imap.StatusResponseTypeBad, Text: "Not now"}
		}
		for range len(in) + 1 {
			before := conts
			checked = false
			cmd, err := r.ReadCommand()
			var e *Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return
			case errors.As(err, &e):
				if e.Type != imap.StatusResponseTypeBad && e.Type != imap.StatusResponseTypeNo {
					t.Fatalf("refusal %+v", e)
				}
				if checked && conts != before {
					t.Fatalf("%d continuation requests for a command Check refused", conts-before)
				}
				if e.Close {
					if _, err := r.ReadCommand(); !errors.Is(err, ErrRefused) {
						t.Fatalf("read after %+v: %v", e, err)
					}
					return
				}
				continue
			case err != nil:
				t.Fatalf("error %v", err)
			}
			if cmd.Tag == "" || strings.ContainsAny(cmd.Tag, " +(){\r\n") {
				t.Fatalf("tag %q", cmd.Tag)
			}
			checkNames(t, cmd, utf8Names)
			if a, ok := cmd.Args.(*Append); ok {
				if drainAppend(t, r, a) {
					return
				}
			}
		}
		t.Fatalf("no progress on %q", in)
	})
}

// checkNames: a mailbox name that is taken is valid UTF-8 without
// control characters.
func checkNames(t *testing.T, cmd *Command, utf8Names bool) {
	var names []string
	switch a := cmd.Args.(type) {
	case *Select:
		names = []string{a.Mailbox}
	case *Mailbox:
		names = []string{a.Name}
	case *Rename:
		names = []string{a.From, a.To}
	case *Copy:
		names = []string{a.Mailbox}
	case *Status:
		names = []string{a.Mailbox}
	case *Create:
		names = []string{a.Mailbox}
	}
	for _, n := range names {
		if Undecodable(n) {
			continue // marked, answered NO [CANNOT] by the session
		}
		if !utf8.ValidString(n) || !validName(n) {
			t.Fatalf("%s took mailbox name %q (UTF8 %t)", cmd.Name, n, utf8Names)
		}
	}
}

// drainAppend reads an APPEND's messages and parts, some read and some
// not; it reports whether the input ended.
func drainAppend(t *testing.T, r *Reader, a *Append) bool {
	m := a.Message
	for i := 0; m != nil; i++ {
		if m.Catenate {
			for {
				p, err := r.NextPart()
				if err != nil {
					return true
				}
				if p == nil {
					break
				}
				if p.Body != nil && i%2 == 0 {
					if n, _ := io.Copy(io.Discard, p.Body); n > p.Size {
						t.Fatalf("part of %d bytes read as %d", p.Size, n)
					}
				}
			}
		} else if i%2 == 0 {
			if n, _ := io.Copy(io.Discard, m.Body); n > m.Size {
				t.Fatalf("message of %d bytes read as %d", m.Size, n)
			}
		}
		var err error
		m, err = r.NextMessage()
		if err != nil {
			var e *Error
			return !errors.As(err, &e) || e.Close
		}
	}
	return false
}

// FuzzMUTF7: a name decoded from modified UTF-7 encodes back to a form
// that decodes to it, and every UTF-8 name without controls round-trips.
func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "&AMQ-rger &- Co", "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "&2D3cAA-", "&", "Ärger & Co"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := DecodeMUTF7(s); err == nil {
			if again, err := DecodeMUTF7(EncodeMUTF7(dec)); err != nil || again != dec {
				t.Fatalf("%q → %q → %q → %q %v", s, dec, EncodeMUTF7(dec), again, err)
			}
		}
		if validName(s) {
			enc := EncodeMUTF7(s)
			if dec, err := DecodeMUTF7(enc); err != nil || dec != s {
				t.Fatalf("%q → %q → %q %v", s, enc, dec, err)
			}
		}
	})
}
