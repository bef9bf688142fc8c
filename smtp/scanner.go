package smtp

import (
	"bytes"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
)

// Replies for DATA content that breaks RFC 5321 section 2.3.8: every line
// ends with CRLF, and CR and LF appear nowhere else. A receiver that
// accepted other line endings would disagree with some relay about where
// a message ends, which is what SMTP smuggling exploits; NUL is refused
// because no text or 8BITMIME message may contain it (RFC 6152).
var (
	errBareLineEnding = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 6, 0},
		Message: "Message contains a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)"}
	errNulInData = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 6, 0},
		Message: "Message contains a NUL character"}
)

// scanMode is what the scanner takes the next input bytes for.
type scanMode uint8

const (
	modeCommand scanMode = iota // command lines
	modeWait                    // after DATA: its reply says what follows
	modeSASL                    // one line answering a 334 challenge
	modeData                    // DATA content, up to CRLF "." CRLF
	modeChunk                   // a BDAT chunk: a byte count
)

// scanner is the SMTP framing of the client's side of a connection,
// read where the plaintext is visible (below go-smtp, above TLS). It
// splits the stream into command lines, SASL responses, DATA content and
// BDAT chunks the way the protocol defines them, and hands go-smtp
// bytes that go-smtp cannot misread:
//
//   - Command lines go one at a time, so that each decision about a line
//     (STARTTLS, the end of a transaction, a draining server) is taken
//     once go-smtp has answered every line before it. A bare
//     RCPT TO:<postmaster> (RFC 5321 section 4.5.1) becomes
//     RCPT TO:<postmaster@domain>, which go-smtp's parser accepts, and a
//     source route in MAIL or RCPT, which go-smtp strips silently, is
//     reported with the line.
//   - DATA ends at the first CRLF "." CRLF of the byte stream (the CRLF
//     may be the one before the content). Content without a bare CR, a
//     bare LF or a NUL passes unchanged, and go-smtp's end-of-data state
//     machine ends at the same byte. At the first such byte the message
//     is marked refused and its remaining content is dropped; at the
//     real end go-smtp gets the shortest input that ends its own state
//     machine from where it is. So go-smtp never ends early (no
//     smuggled command), never misses the end (a CR before the final
//     CRLF used to hide it), and never stores a refused message.
//   - BDAT chunks pass unchanged and are checked for the same bytes.
//
// Lines longer than maxLine (CRLF included) end the connection with
// go-smtp's ErrTooLongLine, in commands and in DATA, so a command line
// held back until its LF never needs more than maxLine bytes.
type scanner struct {
	maxLine    int
	postmaster string // what a bare "postmaster" recipient becomes

	mode scanMode
	verb string // verb of the last command line handed on

	// DATA and BDAT content.
	match   uint8       // bytes of CRLF "." CRLF matched (2 at the start)
	prevCR  bool        // the last content byte was CR
	lineLen int         // content bytes since the last LF
	drop    bool        // dropping content until the end of data
	term    string      // then: the end go-smtp gets
	bad     *mail.Error // first violation in the current message

	// BDAT.
	chunkLeft int64
	chunkLast bool
	chunkOpen bool // a BDAT transfer is in progress
}

// command is a command line the scanner consumed.
type command struct {
	verb     string // upper-case, as go-smtp's parseCmd takes it
	startTLS bool   // a line go-smtp would take for STARTTLS
	tlsArgs  bool   // STARTTLS with something after it
	route    bool   // MAIL or RCPT with a source route
	refuse   string // a reply to give in place of go-smtp's, which must not see the line
}

func newScanner(maxLine int, postmaster string) *scanner {
	return &scanner{maxLine: maxLine, postmaster: postmaster}
}

// next consumes input from in. It returns how many bytes it used, what
// go-smtp is to read for them (which may alias in), and the command line
// when it consumed one. used == 0 with a nil error means it needs more
// input; err is go-smtp's ErrTooLongLine.
func (s *scanner) next(in []byte) (used int, out []byte, cmd *command, err error) {
	switch s.mode {
	case modeData:
		used, out = s.data(in)
		if s.lineLen >= s.maxLine {
			return 0, nil, nil, gosmtp.ErrTooLongLine
		}
		return used, out, nil, nil
	case modeChunk:
		return s.chunk(in)
	}
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		if len(in) >= s.maxLine {
			return 0, nil, nil, gosmtp.ErrTooLongLine
		}
		return 0, nil, nil, nil
	}
	line := in[:i+1]
	if len(line) > s.maxLine {
		return 0, nil, nil, gosmtp.ErrTooLongLine
	}
	if s.mode == modeSASL {
		s.mode = modeCommand
		s.verb = ""
		return len(line), line, nil, nil
	}
	s.mode = modeCommand
	cmd, out = s.command(line)
	return len(line), out, cmd, nil
}

// command classifies one command line as go-smtp will parse it.
func (s *scanner) command(line []byte) (*command, []byte) {
	text := strings.TrimRight(string(line), "\r\n")
	cmd := &command{}
	if rest, ok := cutPrefixFold(text, "STARTTLS"); ok {
		cmd.verb, cmd.startTLS = "STARTTLS", true
		cmd.tlsArgs = strings.TrimSpace(rest) != ""
		s.verb = ""
		return cmd, line
	}
	verb, arg := splitCommand(text)
	cmd.verb = verb
	s.verb = verb
	switch verb {
	case "MAIL":
		s.chunkOpen = false
		if rest, ok := cutPrefixFold(arg, "FROM:"); ok {
			cmd.route = hasSourceRoute(rest)
			switch {
			case hasControl(rest):
				cmd.refuse = replyLine(errSenderSyntax)
			case !paramsWellFormed(rest):
				cmd.refuse = replyLine(errParamSyntax)
			}
		}
	case "RCPT":
		if rest, ok := cutPrefixFold(arg, "TO:"); ok {
			cmd.route = hasSourceRoute(rest)
			if hasControl(rest) {
				// go-smtp's parser would refuse some of these with a
				// reply of its own, and pass others on: all get ours.
				cmd.refuse = replyLine(errRcptSyntax)
				return cmd, line
			}
			if !paramsWellFormed(rest) {
				cmd.refuse = replyLine(errParamSyntax)
				return cmd, line
			}
			if r, ok := s.rewritePostmaster(line, rest); ok {
				return cmd, r
			}
		}
	case "DATA":
		s.mode = modeWait
	case "BDAT":
		if n, last, ok := parseBDAT(arg); ok {
			if !s.chunkOpen {
				s.startMessage()
				s.chunkOpen = true
			}
			s.mode, s.chunkLeft, s.chunkLast = modeChunk, n, last
			if n == 0 {
				s.endChunk()
			}
		}
	case "HELO", "EHLO", "LHLO":
		s.chunkOpen = false
		if !checkHelo(arg) {
			cmd.refuse = errHeloSyntax
		}
	case "RSET":
		s.chunkOpen = false
	}
	return cmd, line
}

// splitCommand is go-smtp's parseCmd: a verb of four letters, and the
// argument after one space.
func splitCommand(text string) (verb, arg string) {
	switch {
	case len(text) == 4:
		return strings.ToUpper(text), ""
	case len(text) < 6 || text[4] != ' ':
		return "", ""
	}
	return strings.ToUpper(text[:4]), strings.TrimSpace(text[5:])
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// hasSourceRoute reports whether a MAIL or RCPT path starts with an
// at-domain list ("<@a,@b:user@c>"), which go-smtp drops without a word.
// paramsWellFormed checks the ESMTP parameters after a MAIL or RCPT
// path, which go-smtp lets through: no keyword twice (RFC 5321 section
// 4.1.2 gives each one meaning once; a second RET or ORCPT would leave
// which one counts to chance), and SMTPUTF8 without a value (RFC 6531
// section 3.4).
func paramsWellFormed(path string) bool {
	rest := strings.TrimLeft(path, " \t")
	if strings.HasPrefix(rest, "<") {
		quoted := false
		end := -1
		for i := 1; i < len(rest) && end < 0; i++ {
			switch c := rest[i]; {
			case c == '\\' && quoted:
				i++
			case c == '"':
				quoted = !quoted
			case c == '>' && !quoted:
				end = i
			}
		}
		if end < 0 {
			return true // go-smtp refuses the path itself
		}
		rest = rest[end+1:]
	} else if i := strings.IndexAny(rest, " \t"); i >= 0 {
		rest = rest[i:]
	} else {
		rest = ""
	}
	seen := map[string]bool{}
	for _, p := range strings.Fields(rest) {
		key, _, hasValue := strings.Cut(p, "=")
		key = strings.ToUpper(key)
		if seen[key] || key == "SMTPUTF8" && hasValue {
			return false
		}
		seen[key] = true
	}
	return true
}

func hasSourceRoute(path string) bool {
	path = strings.TrimSpace(path)
	path = strings.TrimPrefix(path, "<")
	return strings.HasPrefix(path, "@")
}

// rewritePostmaster turns RCPT TO:<postmaster> (any case, parameters
// kept) into RCPT TO:<postmaster@domain>.
func (s *scanner) rewritePostmaster(line []byte, rest string) ([]byte, bool) {
	if s.postmaster == "" {
		return nil, false
	}
	rest = strings.TrimLeft(rest, " \t")
	params, ok := cutPrefixFold(rest, "<postmaster>")
	if !ok {
		return nil, false
	}
	if params != "" && params[0] != ' ' && params[0] != '\t' {
		return nil, false
	}
	out := "RCPT TO:<" + s.postmaster + ">" + params + "\r\n"
	if len(out) > s.maxLine {
		return nil, false
	}
	return []byte(out), true
}

// parseBDAT is go-smtp's reading of BDAT's argument: when it succeeds,
// go-smtp reads a chunk of n bytes, whatever it then answers.
func parseBDAT(arg string) (n int64, last, ok bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 {
		return 0, false, false
	}
	if len(f) == 2 {
		if !strings.EqualFold(f[1], "LAST") {
			return 0, false, false
		}
		last = true
	}
	size, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, false, false
	}
	return int64(size), last, true
}

// reply tells the scanner go-smtp's reply to the last command line:
// 354 starts DATA content, 334 makes the next line a SASL response, and
// a BDAT transfer ends with its LAST chunk or any refusal.
func (s *scanner) reply(code int) {
	switch {
	case code == 334:
		s.mode = modeSASL
	case s.mode == modeWait && code == 354:
		s.mode = modeData
		s.startMessage()
	case s.mode == modeWait:
		s.mode = modeCommand
	case s.verb == "BDAT" && (code != 250 || s.chunkLast):
		s.chunkOpen = false
	}
}

// startMessage resets the content checks for a new message.
func (s *scanner) startMessage() {
	s.match, s.prevCR, s.lineLen = 2, false, 0
	s.drop, s.term, s.bad = false, "", nil
}

// verdict is the refusal the current (or last) message deserves, if any.
func (s *scanner) verdict() *mail.Error { return s.bad }

// violation is the rule c breaks after the content so far, if any.
func (s *scanner) violation(c byte) *mail.Error {
	switch {
	case s.prevCR && c != '\n', c == '\n' && !s.prevCR:
		return errBareLineEnding
	case c == 0:
		return errNulInData
	}
	return nil
}

// data scans DATA content: see the type's comment.
func (s *scanner) data(in []byte) (int, []byte) {
	for i := 0; i < len(in); i++ {
		if s.match == 0 && (s.drop || !s.prevCR) {
			// In the middle of a line: skip to the next CR, LF or NUL.
			k := ordinary(in[i:min(len(in), i+s.maxLine)])
			s.lineLen += k
			i += k
			if s.lineLen >= s.maxLine {
				return i, nil
			}
			if i == len(in) {
				break
			}
		}
		c := in[i]
		if !s.drop {
			if v := s.violation(c); v != nil {
				// in[i] is the first bad byte: go-smtp has had
				// everything before it and gets nothing after.
				s.bad, s.drop, s.term = v, true, s.terminator()
				s.advance(c)
				return i + 1, in[:i]
			}
			s.prevCR = c == '\r'
		}
		s.advance(c)
		if s.lineLen >= s.maxLine {
			return i + 1, nil
		}
		if s.match == 5 {
			s.mode, s.verb = modeCommand, ""
			if s.drop {
				return i + 1, []byte(s.term)
			}
			return i + 1, in[:i+1]
		}
	}
	if s.drop {
		return len(in), nil
	}
	return len(in), in
}

// ordinary is the length of the run of bytes at the start of b that are
// none of CR, LF and NUL.
func ordinary(b []byte) int {
	n := len(b)
	if k := bytes.IndexByte(b, '\n'); k >= 0 {
		n = k
	}
	if k := bytes.IndexByte(b[:n], '\r'); k >= 0 {
		n = k
	}
	if k := bytes.IndexByte(b[:n], 0); k >= 0 {
		n = k
	}
	return n
}

// advance moves the end-of-data match over c.
func (s *scanner) advance(c byte) {
	s.lineLen++
	switch c {
	case '\r':
		if s.match == 3 {
			s.match = 4
		} else {
			s.match = 1
		}
	case '\n':
		s.lineLen = 0
		switch s.match {
		case 1:
			s.match = 2
		case 4:
			s.match = 5
		default:
			s.match = 0
		}
	case '.':
		if s.match == 2 {
			s.match = 3
		} else {
			s.match = 0
		}
	default:
		s.match = 0
	}
}

// terminator is what ends go-smtp's end-of-data state machine, from the
// state that the content handed on so far left it in, at its last byte
// and not before. Up to the first bad byte the content is clean, so that
// state follows from the scanner's own.
func (s *scanner) terminator() string {
	switch {
	case s.match == 2: // start of a line
		return ".\r\n"
	case s.match == 3: // "." at the start of a line
		return "\r\n"
	case s.match == 4: // "." CR at the start of a line
		return "\n"
	case s.prevCR: // CR in the middle of a line
		return "\n.\r\n"
	}
	return "\r\n.\r\n"
}

// chunk passes BDAT chunk bytes, checking them.
func (s *scanner) chunk(in []byte) (int, []byte, *command, error) {
	n := min(int64(len(in)), s.chunkLeft)
	b := in[:n]
	// Once the message is refused, later bytes need no look.
	for i := 0; i < len(b) && s.bad == nil; i++ {
		if !s.prevCR {
			// Skip to the next CR, LF or NUL.
			if i += ordinary(b[i:]); i == len(b) {
				break
			}
		}
		c := b[i]
		s.bad = s.violation(c)
		s.prevCR = c == '\r'
	}
	s.chunkLeft -= n
	if s.chunkLeft == 0 {
		s.endChunk()
	}
	return int(n), b, nil, nil
}

// endChunk ends a chunk: back to commands, and a message ending in CR
// has a bare CR.
func (s *scanner) endChunk() {
	s.mode = modeCommand
	if s.chunkLast && s.prevCR && s.bad == nil {
		s.bad = errBareLineEnding
	}
}
