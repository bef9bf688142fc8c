package mailtest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// DialIMAP connects to the IMAP server with STARTTLS and logs in. The
// connection is closed by t.Cleanup.
func (s *Server) DialIMAP(user, password string) *imapclient.Client {
	s.t.Helper()
	c, err := imapclient.DialStartTLS(s.IMAPAddr, &imapclient.Options{TLSConfig: s.ClientTLS})
	if err != nil {
		s.t.Fatalf("mailtest: IMAP: %v", err)
	}
	s.t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		s.t.Fatalf("mailtest: IMAP LOGIN %s: %v", user, err)
	}
	return c
}

// POP3Client is a minimal POP3 client for tests, enough to read and delete
// mail as a POP3 mail client does.
type POP3Client struct {
	conn net.Conn
	r    *bufio.Reader
}

// DialPOP3 connects to the POP3 server, issues STLS and logs in with
// USER/PASS. The connection is closed by t.Cleanup.
func (s *Server) DialPOP3(user, password string) *POP3Client {
	s.t.Helper()
	c, err := dialPOP3(s.POP3Addr, s.ClientTLS, user, password)
	if err != nil {
		s.t.Fatalf("mailtest: POP3: %v", err)
	}
	s.t.Cleanup(func() { c.conn.Close() })
	return c
}

func dialPOP3(addr string, tlsConfig *tls.Config, user, password string) (*POP3Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &POP3Client{conn: conn, r: bufio.NewReader(conn)}
	if _, err := c.reply(); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := c.Cmd("STLS"); err != nil {
		conn.Close()
		return nil, err
	}
	tc := tls.Client(conn, tlsConfig)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	if _, err := c.Cmd("USER " + user); err != nil {
		c.conn.Close()
		return nil, err
	}
	if _, err := c.Cmd("PASS " + password); err != nil {
		c.conn.Close()
		return nil, err
	}
	return c, nil
}

// Cmd sends one command and returns the text after "+OK", or an error
// holding the "-ERR" line.
func (c *POP3Client) Cmd(line string) (string, error) {
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return "", err
	}
	return c.reply()
}

func (c *POP3Client) reply() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(line, "+OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("pop3: %s", line)
}

// multiline reads a dot-terminated response body, undoing dot-stuffing.
func (c *POP3Client) multiline() ([]byte, error) {
	var out []byte
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(line, ".")...)
	}
}

// Stat returns the message count and total size.
func (c *POP3Client) Stat() (count, size int, err error) {
	r, err := c.Cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(r, "%d %d", &count, &size); err != nil {
		return 0, 0, fmt.Errorf("pop3: bad STAT reply %q", r)
	}
	return count, size, nil
}

// Retr returns message n (1-based) as stored.
func (c *POP3Client) Retr(n int) ([]byte, error) {
	if _, err := c.Cmd("RETR " + strconv.Itoa(n)); err != nil {
		return nil, err
	}
	return c.multiline()
}

// UIDL returns the unique-id listing, by message number.
func (c *POP3Client) UIDL() (map[int]string, error) {
	if _, err := c.Cmd("UIDL"); err != nil {
		return nil, err
	}
	body, err := c.multiline()
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\r\n") {
		var n int
		var id string
		if _, err := fmt.Sscanf(l, "%d %s", &n, &id); err == nil {
			out[n] = id
		}
	}
	return out, nil
}

// Dele marks message n for deletion at Quit.
func (c *POP3Client) Dele(n int) error {
	_, err := c.Cmd("DELE " + strconv.Itoa(n))
	return err
}

// Quit ends the session, applying deletions, and closes the connection.
func (c *POP3Client) Quit() error {
	_, err := c.Cmd("QUIT")
	c.conn.Close()
	return err
}
