package smtp

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
)

// refLineEndings is the plain statement of the content rule: the first
// violation in b, or nil.
func refLineEndings(b []byte) error {
	for i, c := range b {
		switch {
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return errBareLineEnding
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return errBareLineEnding
		case c == 0:
			return errNulInData
		}
	}
	return nil
}

// gosmtpEnd runs go-smtp's end-of-data state machine (dataReader in
// go-smtp v0.25.1's data.go) over b, and returns the number of bytes it
// reads up to the end of data, or -1 when it does not end.
func gosmtpEnd(b []byte) int {
	const (
		beginLine = iota
		dot
		dotCR
		cr
		data
	)
	state := beginLine
	for i, c := range b {
		switch state {
		case beginLine:
			switch c {
			case '.':
				state = dot
			case '\r':
				state = cr
			default:
				state = data
			}
		case dot:
			if c == '\r' {
				state = dotCR
			} else {
				state = data
			}
		case dotCR:
			if c == '\n' {
				return i + 1
			}
			state = data
		case cr:
			if c == '\n' {
				state = beginLine
			} else {
				state = data
			}
		case data:
			if c == '\r' {
				state = cr
			}
		}
	}
	return -1
}

// realEnd is where DATA really ends in b: after the first CRLF "." CRLF,
// counting the CRLF before the content. -1 when it does not.
func realEnd(b []byte) int {
	i := bytes.Index(append([]byte("\r\n"), b...), []byte("\r\n.\r\n"))
	if i < 0 {
		return -1
	}
	return i + 3
}

// transcript is what a scanner made of a client's input.
type transcript struct {
	lines    []string // command lines as go-smtp got them
	messages []scannedMessage
	err      error
}

type scannedMessage struct {
	in, out []byte
	verdict *mail.Error
}

// drive feeds in to a scanner the way conn does, in reads of step bytes,
// and plays go-smtp's part in the framing: DATA gets 354, AUTH 334 and
// each BDAT chunk 250. It checks what must always hold and returns the
// transcript.
func drive(t *testing.T, in []byte, step int) transcript {
	t.Helper()
	const maxLine = 200
	s := newScanner(maxLine, "postmaster@local.example")
	var tr transcript
	avail, pos := 0, 0
	var msg *scannedMessage
	for {
		used, out, cmd, err := s.next(in[pos:avail])
		if err != nil {
			if !errors.Is(err, gosmtp.ErrTooLongLine) {
				t.Fatalf("error %v", err)
			}
			tr.err = err
			return tr
		}
		if used == 0 {
			if s.mode == modeData || s.mode == modeChunk {
				if pos != avail {
					t.Fatalf("content left unread in mode %d", s.mode)
				}
			}
			if avail == len(in) {
				return tr
			}
			avail = min(avail+step, len(in))
			continue
		}
		consumed := in[pos : pos+used]
		pos += used
		switch {
		case msg != nil:
			msg.in = append(msg.in, consumed...)
			msg.out = append(msg.out, out...)
			if s.mode == modeData {
				if e := gosmtpEnd(msg.out); e >= 0 {
					t.Fatalf("go-smtp would end DATA early at %d in %q (input %q)", e, msg.out, msg.in)
				}
				continue
			}
			// The end of data.
			if e := realEnd(msg.in); e != len(msg.in) {
				t.Fatalf("DATA ended after %d bytes, really ends at %d: %q", len(msg.in), e, msg.in)
			}
			if e := gosmtpEnd(msg.out); e != len(msg.out) {
				t.Fatalf("go-smtp ends %q at %d, want %d (input %q)", msg.out, e, len(msg.out), msg.in)
			}
			msg.verdict = s.verdict()
			if want := refLineEndings(msg.in); (want == nil && msg.verdict != nil) || (want != nil && want != error(msg.verdict)) {
				t.Fatalf("%q: verdict %v, want %v", msg.in, msg.verdict, want)
			}
			if msg.verdict == nil && !bytes.Equal(msg.in, msg.out) {
				t.Fatalf("clean content changed: %q became %q", msg.in, msg.out)
			}
			tr.messages = append(tr.messages, *msg)
			msg = nil
		case cmd != nil:
			if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
				t.Fatalf("command output %q is not one line", out)
			}
			if !bytes.Equal(out, consumed) && !strings.HasPrefix(string(out), "RCPT TO:<postmaster@local.example>") {
				t.Fatalf("line %q passed on as %q", consumed, out)
			}
			tr.lines = append(tr.lines, string(out))
			switch {
			case cmd.verb == "DATA" && s.mode == modeWait:
				s.reply(354)
				msg = &scannedMessage{}
			case cmd.verb == "AUTH":
				s.reply(334)
			case cmd.verb == "BDAT" && s.mode == modeCommand:
				s.reply(250) // an empty chunk
			}
		case s.mode == modeCommand && s.verb == "BDAT":
			// A chunk passes unchanged, and ends with its count.
			if !bytes.Equal(out, consumed) {
				t.Fatal("chunk changed")
			}
			s.reply(250)
		default:
			if !bytes.Equal(out, consumed) {
				t.Fatalf("%q passed on as %q", consumed, out)
			}
			if s.mode == modeCommand && s.verb == "" {
				tr.lines = append(tr.lines, string(out))
			}
		}
	}
}

func TestScannerData(t *testing.T) {
	for _, tc := range []struct {
		in      string // content after 354, then what follows
		out     string // what go-smtp reads of the content
		verdict *mail.Error
		next    string // the first command line after the data
	}{
		{".\r\nQUIT\r\n", ".\r\n", nil, "QUIT\r\n"},
		{"a\r\nb\r\n.\r\nQUIT\r\n", "a\r\nb\r\n.\r\n", nil, "QUIT\r\n"},
		{"..\r\n.\r\nQUIT\r\n", "..\r\n.\r\n", nil, "QUIT\r\n"},
		// A CR before the final CRLF: the real end, refused.
		{"text\r\r\n.\r\nNOOP\r\n", "text\r\n.\r\n", errBareLineEnding, "NOOP\r\n"},
		{"a\nb\r\n.\r\nNOOP\r\n", "a\r\n.\r\n", errBareLineEnding, "NOOP\r\n"},
		{"\n.\nMAIL FROM:<e@x>\r\n.\r\nNOOP\r\n", ".\r\n", errBareLineEnding, "NOOP\r\n"},
		{"a\r\n.\rMAIL FROM:<e@x>\r\n.\r\nNOOP\r\n", "a\r\n.\r\n", errBareLineEnding, "NOOP\r\n"},
		{"a\r\n.\nx\r\n.\r\nNOOP\r\n", "a\r\n.\r\n", errBareLineEnding, "NOOP\r\n"},
		{"a\r\n\x00.\r\nx\r\n.\r\nNOOP\r\n", "a\r\n.\r\n", errNulInData, "NOOP\r\n"},
	} {
		for _, step := range []int{1, 3, 1 << 20} {
			tr := drive(t, []byte("DATA\r\n"+tc.in), step)
			if len(tr.messages) != 1 {
				t.Fatalf("%q: %d messages", tc.in, len(tr.messages))
			}
			m := tr.messages[0]
			if string(m.out) != tc.out || m.verdict != tc.verdict {
				t.Errorf("%q (reads of %d): go-smtp gets %q, verdict %v; want %q, %v", tc.in, step, m.out, m.verdict, tc.out, tc.verdict)
			}
			if len(tr.lines) != 2 || tr.lines[1] != tc.next {
				t.Errorf("%q: command lines %q, want DATA then %q", tc.in, tr.lines, tc.next)
			}
		}
	}
}

func TestScannerCommands(t *testing.T) {
	s := newScanner(100, "postmaster@local.example")
	for _, tc := range []struct {
		line, out string
		route     bool
	}{
		{"RCPT TO:<postmaster>\r\n", "RCPT TO:<postmaster@local.example>\r\n", false},
		{"rcpt to: <PostMaster> NOTIFY=NEVER\r\n", "RCPT TO:<postmaster@local.example> NOTIFY=NEVER\r\n", false},
		{"RCPT TO:<postmaster@other.example>\r\n", "RCPT TO:<postmaster@other.example>\r\n", false},
		{"RCPT TO:<postmasters>\r\n", "RCPT TO:<postmasters>\r\n", false},
		{"RCPT TO:<@a:b@c>\r\n", "RCPT TO:<@a:b@c>\r\n", true},
		{"MAIL FROM:<@a,@b:user@c>\r\n", "MAIL FROM:<@a,@b:user@c>\r\n", true},
		{"MAIL FROM: @a:user@c\r\n", "MAIL FROM: @a:user@c\r\n", true},
		{"MAIL FROM:<user@c>\r\n", "MAIL FROM:<user@c>\r\n", false},
	} {
		used, out, cmd, err := s.next([]byte(tc.line + "NOOP\r\n"))
		if err != nil || used != len(tc.line) || string(out) != tc.out || cmd == nil || cmd.route != tc.route {
			t.Errorf("%q: used %d of it, go-smtp gets %q, %+v, %v", tc.line, used, out, cmd, err)
		}
	}
	if _, _, cmd, _ := s.next([]byte("starttls\r\n")); cmd == nil || !cmd.startTLS || cmd.tlsArgs {
		t.Errorf("STARTTLS: %+v", cmd)
	}
	if _, _, _, err := s.next([]byte(strings.Repeat("x", 100))); !errors.Is(err, gosmtp.ErrTooLongLine) {
		t.Errorf("long line: %v", err)
	}
	if used, _, _, err := s.next([]byte(strings.Repeat("x", 99))); used != 0 || err != nil {
		t.Errorf("partial line: used %d, %v", used, err)
	}
}

// TestScannerBDATVerdict checks the content rule over BDAT chunks, whose
// boundaries fall anywhere: a CRLF may be split between two chunks, and
// a CR ending one chunk is judged by the next chunk's first byte, or by
// the message's end when that chunk was the LAST (empty chunks too).
func TestScannerBDATVerdict(t *testing.T) {
	for _, chunks := range [][]string{
		{"a\r\nb\r\n"},
		{"a\r", "\nb\r\n"},
		{"a\r", "b\r\n"},
		{"a\r\nb\r"},
		{"a\r", ""},
		{"a\r\n", ""},
		{"a\n"},
		{"a\r\n\x00\r\n"},
		{"a\r", "\x00"},
	} {
		s := newScanner(100, "")
		for i, chunk := range chunks {
			line := "BDAT " + strconv.Itoa(len(chunk))
			if i == len(chunks)-1 {
				line += " LAST"
			}
			in := []byte(line + "\r\n" + chunk)
			for len(in) > 0 {
				used, _, _, err := s.next(in)
				if err != nil || used == 0 {
					t.Fatalf("%q: used %d, %v", chunks, used, err)
				}
				in = in[used:]
			}
			if s.mode != modeCommand {
				t.Fatalf("%q: chunk %d not ended", chunks, i)
			}
			s.reply(250)
		}
		want := refLineEndings([]byte(strings.Join(chunks, "")))
		if got := s.verdict(); (want == nil) != (got == nil) || want != nil && want != error(got) {
			t.Errorf("%q: verdict %v, want %v", chunks, got, want)
		}
	}
}

// FuzzScanner checks the framing on any client input, split into reads
// of any size: go-smtp ends DATA exactly where it really ends, clean
// content is never changed, the verdict is the content rule's, and
// command lines pass one by one.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		"\x01EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<postmaster>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n",
		"\x03DATA\r\ntext\r\r\n.\r\nNOOP\r\n",
		"\x05DATA\r\nbody\n.\nMAIL FROM:<e@x>\r\n.\r\n",
		"\x02DATA\r\nbody\r\n.\rx\r\n.\r\n",
		"\x07BDAT 5\r\nab\r\nBDAT 3 LAST\r\nc\r\nQUIT\r\n",
		"\x01AUTH PLAIN\r\nSTARTTLS\r\nDATA\r\n.\r\n",
		"\x04MAIL FROM:<\"a>\\\"b\"@c> RET=FULL ret=HDRS SMTPUTF8=x\r\nRCPT TO:<d@e> NOTIFY=NEVER\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		drive(t, in[1:], int(in[0])%17+1)
	})
}

// BenchmarkScannerData measures the scanner on a clean 10 KB message
// read in 8 KB reads, against the least any end-of-data search does:
// bytes.Index for CRLF "." CRLF over the same bytes.
//
//	go test -run '^$' -bench ScannerData ./smtp
func BenchmarkScannerData(b *testing.B) {
	msg := []byte(strings.Repeat(strings.Repeat("x", 76)+"\r\n", 10<<10/78) + ".\r\n")
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		s := newScanner(4096, "")
		for range b.N {
			s.mode = modeData
			s.startMessage()
			for in := msg; len(in) > 0; {
				used, _, _, err := s.next(in[:min(len(in), 8<<10)])
				if err != nil || used == 0 {
					b.Fatal(used, err)
				}
				in = in[used:]
			}
		}
	})
	b.Run("index", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for range b.N {
			if bytes.Index(msg, []byte("\r\n.\r\n")) < 0 {
				b.Fatal("no end")
			}
		}
	})
}
