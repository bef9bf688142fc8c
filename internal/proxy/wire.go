package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// errTooLong is a command line (with its literals) over the limit: the
// connection is answered and closed, since the rest of it cannot be
// told from the next command.
var errTooLong = errors.New("proxy: command too long")

// errSyntax is a command that does not parse; the connection stays
// usable.
var errSyntax = errors.New("proxy: syntax error")

// lineReader reads the CRLF-terminated lines (LF alone is accepted) of
// a client that has not logged in, each bounded before it is buffered
// further.
type lineReader struct {
	br *bufio.Reader
	// cont is written before a synchronising IMAP literal is read.
	cont io.Writer
	max  int
	// refuse, when set, names the IMAP commands answered NO or BAD
	// whatever their arguments: a synchronising literal of theirs ends
	// the command unread, without a continuation request (no password
	// is invited in clear, no data before login).
	refuse func(name string) bool
}

// readLine reads one line without its line end, counting its bytes
// against *budget.
func (r *lineReader) readLine(budget *int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(line)+len(frag) > *budget {
			return nil, errTooLong
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
	*budget -= len(line)
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// imapCommand is one IMAP command of the not-authenticated state.
type imapCommand struct {
	tag, name string
	// args are the arguments: atoms, quoted strings and literals with
	// their quoting undone, and "(" and ")" as tokens of their own.
	args []string
}

// readIMAP reads one IMAP command, literals included, within r.max
// bytes. A synchronising literal ({n}) gets a continuation request
// first; a non-synchronising one ({n+}, LITERAL+) does not. A tag it
// could read comes back with errSyntax, for the BAD reply.
func (r *lineReader) readIMAP() (imapCommand, error) {
	budget := r.max
	line, err := r.readLine(&budget)
	if err != nil {
		return imapCommand{}, err
	}
	var cmd imapCommand
	tag, rest, _ := bytes.Cut(line, []byte(" "))
	if !isAtom(tag) || bytes.ContainsRune(tag, '+') {
		return imapCommand{}, errSyntax
	}
	cmd.tag = string(tag)
	name, rest, _ := bytes.Cut(rest, []byte(" "))
	if !isAtom(name) {
		return cmd, errSyntax
	}
	cmd.name = strings.ToUpper(string(name))
	for line = rest; ; {
		lit, n, err := cmd.parseArgs(line)
		if err != nil {
			return cmd, err
		}
		if !lit {
			return cmd, nil
		}
		if n < 0 && r.refuse != nil && r.refuse(cmd.name) {
			return cmd, nil // the client sends nothing more without the request
		}
		if n > budget {
			return cmd, errTooLong
		}
		if n < 0 {
			// A synchronising literal: the client waits for this.
			if _, err := io.WriteString(r.cont, "+ Ready for literal data\r\n"); err != nil {
				return cmd, err
			}
			n = -n
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return cmd, err
		}
		budget -= n
		cmd.args = append(cmd.args, string(buf))
		if line, err = r.readLine(&budget); err != nil {
			return cmd, err
		}
	}
}

// parseArgs appends the arguments in line to cmd.args. When the line
// ends in a literal's announcement it reports it, with its length,
// negative for a synchronising one.
func (cmd *imapCommand) parseArgs(line []byte) (literal bool, n int, err error) {
	for len(line) > 0 {
		switch c := line[0]; c {
		case ' ':
			line = line[1:]
		case '(', ')':
			cmd.args = append(cmd.args, string(c))
			line = line[1:]
		case '"':
			s, rest, ok := unquote(line)
			if !ok {
				return false, 0, errSyntax
			}
			cmd.args = append(cmd.args, s)
			line = rest
		case '{':
			spec, ok := bytes.CutSuffix(line[1:], []byte("}"))
			if !ok {
				return false, 0, errSyntax
			}
			spec, plus := bytes.CutSuffix(spec, []byte("+"))
			v, err := strconv.ParseUint(string(spec), 10, 31)
			if err != nil || len(spec) == 0 || spec[0] == '+' {
				return false, 0, errSyntax
			}
			if !plus {
				return true, -int(v), nil
			}
			return true, int(v), nil
		default:
			end := bytes.IndexAny(line, " ()")
			if end < 0 {
				end = len(line)
			}
			if !isAtom(line[:end]) {
				return false, 0, errSyntax
			}
			cmd.args = append(cmd.args, string(line[:end]))
			line = line[end:]
		}
	}
	return false, 0, nil
}

// unquote reads the quoted string at the start of b (RFC 3501's quoted:
// only \" and \\ are escapes).
func unquote(b []byte) (string, []byte, bool) {
	var s []byte
	for i := 1; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			return string(s), b[i+1:], true
		case '\\':
			if i+1 == len(b) || (b[i+1] != '"' && b[i+1] != '\\') {
				return "", nil, false
			}
			i++
			s = append(s, b[i])
		case '\r', '\n', 0:
			return "", nil, false
		default:
			s = append(s, c)
		}
	}
	return "", nil, false
}

// isAtom reports whether b is a non-empty run of printable ASCII
// without IMAP's specials.
func isAtom(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\`, c) >= 0 {
			return false
		}
	}
	return true
}

// quote returns s as an IMAP quoted string, or a non-synchronising
// literal when it holds a line end, NUL or 8-bit bytes (the backends
// announce LITERAL+).
func quote(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			return "{" + strconv.Itoa(len(s)) + "+}\r\n" + s
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
