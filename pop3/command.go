package pop3

import (
	"errors"
	"strings"
)

// maxCommandLine is RFC 2449's limit on a command line, CRLF included.
const maxCommandLine = 255

// maxSASLLine bounds a SASL response line. RFC 5034 lifts the 255-octet
// limit for them: a base64 PLAIN response with auth's longest password
// (1,024 octets) and two 255-octet names is about 2,100 octets.
const maxSASLLine = 4096

// Parse errors, each answered with -ERR; the session goes on.
var (
	errEmptyCommand = errors.New("empty command")
	errBadKeyword   = errors.New("command keyword is not a word of letters")
	errBadCharacter = errors.New("control character in command")
)

// command is one parsed command line.
type command struct {
	// name is the keyword in upper case.
	name string
	// args are the space-separated arguments.
	args []string
	// rest is everything after the keyword and its space, for PASS,
	// whose one argument may contain spaces (RFC 1939 section 7).
	rest string
}

// parseCommand parses a command line without its line ending. Keywords
// are case-insensitive; arguments are separated by spaces (RFC 1939 says
// one; several are accepted, as Dovecot does). Control characters are
// refused, so that nothing a client sends reaches a log or a lookup with
// a NUL or a bare CR in it.
func parseCommand(line string) (command, error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return command{}, errBadCharacter
		}
	}
	line = strings.TrimRight(line, " \t")
	if line == "" {
		return command{}, errEmptyCommand
	}
	kw, rest, _ := strings.Cut(line, " ")
	if kw == "" {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return command{}, errBadKeyword
		}
	}
	cmd := command{name: strings.ToUpper(kw), rest: rest}
	cmd.args = strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' })
	return cmd, nil
}

// Message-number errors.
var (
	errNotNumber = errors.New("invalid message number")
	errNoMessage = errors.New("no such message")
)

// parseNumber parses a non-negative decimal argument (a message number
// or TOP's line count): digits only, at most nine so that it fits an int
// on every platform.
func parseNumber(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, errNotNumber
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errNotNumber
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// parseMsgNum parses a message number of a maildrop of count messages.
func parseMsgNum(s string, count int) (int, error) {
	n, err := parseNumber(s)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > count {
		return 0, errNoMessage
	}
	return n, nil
}
