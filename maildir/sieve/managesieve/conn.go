package managesieve

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/readclock"
	"github.com/mailagent/mailagent/maildir/sieve"
	"github.com/mailagent/mailagent/store"
)

const maxLine = 8 << 10 // a command line, literals aside

// maxPreLogin bounds a whole command before login, its lines and
// literals together (AUTHENTICATE and its longest SASL response fit
// several times). After login a command may carry one script besides:
// MaxScriptSize more. The bytes are counted as they are announced, so a
// command over its bound ends the connection before they are read.
const maxPreLogin = 16 << 10

type conn struct {
	srv    *Server
	raw    net.Conn
	nc     net.Conn // raw, or the TLS connection over it
	br     *bufio.Reader
	bw     *bufio.Writer
	clock  *readclock.Clock
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	tls    bool
	user   *store.User
	home   storage
	fails  int

	draining atomic.Bool // Shutdown asked the session to end
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	id := make([]byte, 6)
	rand.Read(id)
	c := &conn{srv: s, raw: nc, ctx: ctx, cancel: cancel}
	c.clock = readclock.New(readclock.Limits{Line: s.opts.IdleTimeout, Login: s.opts.LoginTimeout,
		MinRate: 1024, Grace: 30 * time.Second, Stall: s.opts.IdleTimeout}, time.Now())
	c.log = s.log.With("session", hex.EncodeToString(id), "remote", nc.RemoteAddr().String())
	c.setConn(nc)
	return c
}

func (c *conn) setConn(nc net.Conn) {
	c.nc = nc
	dc := c.clocked(nc)
	c.br = bufio.NewReaderSize(dc, maxLine)
	c.bw = bufio.NewWriterSize(dc, 16<<10)
}

// clocked wraps nc so that every read meets the connection's clock and
// every write WriteTimeout, and reads fail once Shutdown has asked the
// connection to end.
func (c *conn) clocked(nc net.Conn) net.Conn {
	return &readclock.Conn{Conn: nc, Clock: c.clock, WriteTimeout: c.srv.opts.WriteTimeout, Draining: c.draining.Load}
}

// Drain asks the session to end once its current command is answered.
func (c *conn) Drain() {
	c.draining.Store(true)
	c.raw.SetReadDeadline(time.Now())
}

// Close ends the connection at once, from another goroutine (Close and
// Shutdown).
func (c *conn) Close() error { return c.raw.Close() }

// errQuit ends the session after the reply already written.
var errQuit = errors.New("quit")

// protoError is a reply to a bad command line; the session goes on
// unless close is set.
type protoError struct {
	reply string
	close bool
}

func (e *protoError) Error() string { return e.reply }

func (c *conn) serve() {
	defer func() {
		c.cancel()
		c.nc.Close()
	}()
	c.log.Debug("connect")
	c.write(c.capabilities() + "OK \"ManageSieve ready.\"\r\n")
	if c.flush() != nil {
		return
	}
	for {
		args, err := c.readCommand()
		if err != nil {
			var pe *protoError
			switch {
			case errors.As(err, &pe):
				c.write(pe.reply)
				if c.flush() != nil || pe.close {
					return
				}
				continue
			case errors.Is(err, readclock.ErrDraining) || c.draining.Load():
				c.write("BYE (TRYLATER) \"Server shutting down.\"\r\n")
			case isTimeout(err):
				if c.clock.Cause() == readclock.Login {
					c.write(fmt.Sprintf("BYE \"Disconnected: no login within %d seconds.\"\r\n", int((c.srv.opts.LoginTimeout+time.Second-1)/time.Second)))
				} else {
					c.write("BYE \"Disconnected for inactivity.\"\r\n")
				}
				c.log.Info("timeout", "cause", c.clock.Cause().String())
			}
			c.flush()
			return
		}
		err = c.dispatch(args)
		c.clock.EndLine()
		if ferr := c.flush(); ferr != nil {
			return
		}
		if err != nil {
			return
		}
		if c.draining.Load() {
			c.write("BYE (TRYLATER) \"Server shutting down.\"\r\n")
			c.flush()
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) write(s string) { c.bw.WriteString(s) }
func (c *conn) flush() error   { return c.bw.Flush() }

// readCommand reads one command: words (atoms, quoted strings, literals)
// up to the line's end. The first word is upper-cased.
func (c *conn) readCommand() ([]string, error) {
	var words []string
	budget := int64(maxPreLogin)
	if c.user != nil {
		budget += c.srv.opts.MaxScriptSize
	}
	tooLong := &protoError{reply: "BYE \"Command too long.\"\r\n", close: true}
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if budget -= int64(len(line)) + 2; budget < 0 {
			return nil, tooLong
		}
		lit := -1
		rest := line
		// A literal announcement ends the line: {N} or {N+}.
		if strings.HasSuffix(rest, "}") {
			if i := strings.LastIndexByte(rest, '{'); i >= 0 {
				n := strings.TrimSuffix(rest[i+1:len(rest)-1], "+")
				if v, err := strconv.ParseInt(n, 10, 64); err == nil && n != "" && n[0] != '-' {
					if v > c.srv.opts.MaxScriptSize {
						return nil, &protoError{reply: "BYE (QUOTA/MAXSIZE) \"Literal too large.\"\r\n", close: true}
					}
					if budget -= v; budget < 0 {
						return nil, tooLong
					}
					lit = int(v)
					rest = rest[:i]
				}
			}
		}
		w, err := splitWords(rest)
		if err != nil {
			if lit >= 0 {
				// The literal's bytes must not be read as commands.
				return nil, &protoError{reply: "BYE \"Bad command line.\"\r\n", close: true}
			}
			return nil, err
		}
		words = append(words, w...)
		if lit < 0 {
			if len(words) == 0 {
				return nil, &protoError{reply: "NO \"Empty command.\"\r\n"}
			}
			if !strings.HasPrefix(words[0], "\x00") {
				words[0] = strings.ToUpper(words[0])
			}
			return words, nil
		}
		c.clock.SetData(true)
		b := make([]byte, lit)
		_, err = io.ReadFull(c.br, b)
		c.clock.SetData(false)
		if err != nil {
			return nil, err
		}
		words = append(words, "\x00"+string(b)) // marks a string argument
	}
}

func (c *conn) readLine() (string, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", &protoError{reply: "BYE \"Line too long.\"\r\n", close: true}
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// splitWords splits a line into atoms and quoted strings; strings are
// returned with a leading NUL so that commands can tell them from atoms.
func splitWords(s string) ([]string, error) {
	var out []string
	bad := &protoError{reply: "NO \"Bad command syntax.\"\r\n"}
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ':
			i++
		case ch == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, bad
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				} else if s[i] == '"' {
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, "\x00"+b.String())
		default:
			j := strings.IndexAny(s[i:], " \"")
			if j < 0 {
				j = len(s) - i
			}
			out = append(out, s[i:i+j])
			i += j
		}
	}
	return out, nil
}

// strArg returns argument i as a string, or false if it is missing or an
// atom.
func strArg(args []string, i int) (string, bool) {
	if i >= len(args) || !strings.HasPrefix(args[i], "\x00") {
		return "", false
	}
	return args[i][1:], true
}

func no(code, text string) string {
	if code != "" {
		return "NO (" + code + ") " + quote(text) + "\r\n"
	}
	return "NO " + quote(text) + "\r\n"
}

const (
	replyOK     = "OK\r\n"
	replySyntax = "NO \"Bad arguments.\"\r\n"
	replyAuth   = "NO \"Authenticate first.\"\r\n"
	replyTemp   = "NO (TRYLATER) \"Temporary server failure.\"\r\n"
)

func (c *conn) dispatch(args []string) error {
	cmd := args[0]
	args = args[1:]
	switch cmd {
	case "LOGOUT":
		c.write("OK \"Logout.\"\r\n")
		return errQuit
	case "CAPABILITY":
		c.write(c.capabilities() + replyOK)
		return nil
	case "NOOP":
		if tag, ok := strArg(args, 0); ok {
			c.write("OK (TAG " + quote(tag) + ") \"Done.\"\r\n")
		} else {
			c.write(replyOK)
		}
		return nil
	case "STARTTLS":
		return c.startTLS()
	case "AUTHENTICATE":
		return c.authenticate(args)
	}
	if c.user == nil {
		c.write(replyAuth)
		return nil
	}
	switch cmd {
	case "HAVESPACE":
		name, ok := strArg(args, 0)
		if !ok || len(args) != 2 {
			c.write(replySyntax)
			return nil
		}
		size, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || size < 0 {
			c.write(replySyntax)
			return nil
		}
		c.write(c.space(name, size))
	case "PUTSCRIPT", "CHECKSCRIPT":
		var name, body string
		var ok bool
		if cmd == "PUTSCRIPT" {
			name, ok = strArg(args, 0)
			if ok {
				body, ok = strArg(args, 1)
			}
			ok = ok && len(args) == 2
		} else {
			body, ok = strArg(args, 0)
			ok = ok && len(args) == 1
		}
		if !ok {
			c.write(replySyntax)
			return nil
		}
		if cmd == "PUTSCRIPT" && !validName(name) {
			c.write(no("", "Bad script name."))
			return nil
		}
		if _, err := sieve.Parse([]byte(body), sieve.Limits{MaxScriptSize: int(c.srv.opts.MaxScriptSize)}); err != nil {
			c.write(no("", strings.TrimPrefix(err.Error(), "sieve: ")))
			return nil
		}
		if cmd == "CHECKSCRIPT" {
			c.write(replyOK)
			return nil
		}
		if r := c.space(name, int64(len(body))); r != replyOK {
			c.write(r)
			return nil
		}
		if err := c.home.put(name, []byte(body)); err != nil {
			c.fail("putscript", err)
			return nil
		}
		c.log.Info("putscript", "user", c.user.Address, "script", name, "size", len(body))
		c.write(replyOK)
	case "LISTSCRIPTS":
		names, active, err := c.home.list()
		if err != nil {
			c.fail("listscripts", err)
			return nil
		}
		for _, n := range names {
			if n == active {
				c.write(quote(n) + " ACTIVE\r\n")
			} else {
				c.write(quote(n) + "\r\n")
			}
		}
		c.write(replyOK)
	case "SETACTIVE":
		name, ok := strArg(args, 0)
		if !ok || len(args) != 1 {
			c.write(replySyntax)
			return nil
		}
		c.result("setactive", c.home.setActive(name))
	case "GETSCRIPT":
		name, ok := strArg(args, 0)
		if !ok || len(args) != 1 {
			c.write(replySyntax)
			return nil
		}
		b, err := c.home.read(name)
		if err != nil {
			c.result("getscript", err)
			return nil
		}
		c.write(fmt.Sprintf("{%d}\r\n%s\r\nOK\r\n", len(b), b))
	case "DELETESCRIPT":
		name, ok := strArg(args, 0)
		if !ok || len(args) != 1 {
			c.write(replySyntax)
			return nil
		}
		c.result("deletescript", c.home.remove(name))
	case "RENAMESCRIPT":
		from, ok1 := strArg(args, 0)
		to, ok2 := strArg(args, 1)
		if !ok1 || !ok2 || len(args) != 2 {
			c.write(replySyntax)
			return nil
		}
		if !validName(to) {
			c.write(no("", "Bad script name."))
			return nil
		}
		c.result("renamescript", c.home.rename(from, to))
	case "UNAUTHENTICATE":
		c.user, c.home = nil, storage{}
		c.clock.LoggedOut(time.Now())
		c.write(replyOK)
	default:
		c.write(no("", "Unknown command."))
	}
	return nil
}

func (c *conn) result(op string, err error) {
	switch {
	case err == nil:
		c.write(replyOK)
	case errors.Is(err, errNoScript):
		c.write(no("NONEXISTENT", "There is no script by that name."))
	case errors.Is(err, errExists):
		c.write(no("ALREADYEXISTS", "A script by that name exists."))
	case errors.Is(err, errActive):
		c.write(no("ACTIVE", "The script is active."))
	case errors.Is(err, errBadName):
		c.write(no("", "Bad script name."))
	default:
		c.fail(op, err)
	}
}

// fail logs an internal error and tells the client only that it failed.
func (c *conn) fail(op string, err error) {
	c.log.Error(op, "user", c.user.Address, "err", err)
	c.write(replyTemp)
}

// space answers HAVESPACE (and checks PUTSCRIPT): a script of size bytes
// stored as name, replacing one by that name.
func (c *conn) space(name string, size int64) string {
	o := c.srv.opts
	if size > o.MaxScriptSize {
		return no("QUOTA/MAXSIZE", fmt.Sprintf("Scripts may be at most %d bytes.", o.MaxScriptSize))
	}
	n, bytes, err := c.home.usage(name)
	if err != nil {
		c.log.Error("usage", "user", c.user.Address, "err", err)
		return replyTemp
	}
	if n+1 > o.MaxScripts {
		return no("QUOTA/MAXSCRIPTS", fmt.Sprintf("At most %d scripts.", o.MaxScripts))
	}
	if bytes+size > o.MaxStorage {
		return no("QUOTA/MAXSTORAGE", fmt.Sprintf("Scripts may take at most %d bytes together.", o.MaxStorage))
	}
	return replyOK
}

func (c *conn) startTLS() error {
	if c.srv.opts.TLSConfig == nil || c.tls {
		c.write(no("", "STARTTLS is not available."))
		return nil
	}
	if c.br.Buffered() > 0 {
		// Commands sent ahead of the handshake could be injected by a
		// man in the middle.
		c.write("BYE \"Commands after STARTTLS.\"\r\n")
		return errQuit
	}
	c.write("OK \"Begin TLS negotiation now.\"\r\n")
	if err := c.flush(); err != nil {
		return err
	}
	tc := tls.Server(c.clocked(c.raw), c.srv.opts.TLSConfig)
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.WriteTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Info("tls handshake", "err", err)
		return errQuit
	}
	c.tls = true
	c.nc = tc
	c.br = bufio.NewReaderSize(tc, maxLine)
	c.bw = bufio.NewWriterSize(tc, 16<<10)
	// RFC 5804 section 2.2: the capabilities again after TLS.
	c.write(c.capabilities() + replyOK)
	return nil
}

func (c *conn) authenticate(args []string) error {
	if c.user != nil {
		c.write(no("", "Already authenticated."))
		return nil
	}
	if !c.tls && !c.srv.opts.AllowInsecureAuth {
		c.write(no("ENCRYPT-NEEDED", "Use STARTTLS first."))
		return nil
	}
	mech, ok := strArg(args, 0)
	if !ok || len(args) > 2 {
		c.write(replySyntax)
		return nil
	}
	var user *store.User
	srv, err := c.srv.opts.Authenticator.NewSASLServer(c.ctx, strings.ToUpper(mech), c.raw.RemoteAddr(), func(u *store.User) error {
		user = u
		return nil
	})
	if err != nil {
		c.write(no("", "Unsupported mechanism."))
		return nil
	}
	var resp []byte
	if ir, ok := strArg(args, 1); ok {
		if resp, err = base64.StdEncoding.DecodeString(ir); err != nil {
			return c.authFailed(auth.ErrMalformedResponse) // counted like any failed login
		}
	}
	for {
		chal, done, err := srv.Next(resp)
		if err != nil {
			return c.authFailed(err)
		}
		if done {
			break
		}
		c.write(quote(base64.StdEncoding.EncodeToString(chal)) + "\r\n")
		if err := c.flush(); err != nil {
			return err
		}
		words, err := c.readCommand()
		if err != nil {
			return err
		}
		c.clock.EndLine()
		if len(words) == 1 && words[0] == "*" {
			c.write(no("", "Authentication aborted."))
			return nil
		}
		s, ok := strArg(words, 0)
		if !ok || len(words) != 1 {
			c.write(replySyntax)
			return nil
		}
		if resp, err = base64.StdEncoding.DecodeString(s); err != nil {
			return c.authFailed(auth.ErrMalformedResponse) // counted like any failed login
		}
	}
	if user == nil {
		return c.authFailed(auth.ErrInvalidCredentials)
	}
	home, err := c.srv.opts.Home(user)
	if err != nil {
		c.log.Error("home", "user", user.Address, "err", err)
		c.write(replyTemp)
		return nil
	}
	c.user, c.home = user, storage{home: home}
	c.clock.LoggedIn()
	c.log.Info("managesieve: login", "user", user.Address, "tls", c.tls, "method", strings.ToUpper(mech))
	c.write("OK \"Logged in.\"\r\n")
	return nil
}

func (c *conn) authFailed(err error) error {
	if errors.Is(err, auth.ErrThrottled) {
		c.write("BYE (TRYLATER) \"Too many failed logins.\"\r\n")
		return errQuit
	}
	if !errors.Is(err, auth.ErrInvalidCredentials) && !errors.Is(err, auth.ErrAuthzRefused) && !errors.Is(err, auth.ErrMalformedResponse) {
		c.log.Error("authenticate", "err", err)
		c.write(replyTemp)
		return nil
	}
	c.fails++
	c.log.Info("login failed", "failures", c.fails)
	if c.fails >= c.srv.opts.MaxAuthFailures {
		c.write("BYE \"Authentication failed; too many failures.\"\r\n")
		return errQuit
	}
	c.write(no("", "Authentication failed."))
	return nil
}
