package imap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
)

// catenation is a CATENATE message (RFC 4469) as the one stream
// Folder.Append reads: each part in turn, a TEXT literal from the
// connection or a URL's message or section from the user's own
// mailboxes. Each part's size counts against APPENDLIMIT before it is
// read. Nothing is stored unless every part is read whole.
type catenation struct {
	c       *conn
	cur     io.Reader
	release func()
	done    bool
	// wireErr is the parser's error: the command's rest cannot be read
	// as usual.
	wireErr error
}

func (cn *catenation) Read(p []byte) (int, error) {
	for {
		if cn.cur != nil {
			n, err := cn.cur.Read(p)
			if err == io.EOF {
				cn.closePart()
				err = nil
				if n == 0 {
					continue
				}
			}
			return n, err
		}
		if cn.done {
			return 0, io.EOF
		}
		part, err := cn.c.r.NextPart()
		if err != nil {
			cn.wireErr = err
			return 0, err
		}
		if part == nil {
			cn.done = true
			return 0, io.EOF
		}
		if part.Body != nil {
			cn.cur = part.Body
			continue
		}
		r, release, err := cn.c.sess.urlPart(part.URL)
		if err != nil {
			return 0, err
		}
		cn.cur, cn.release = r, release
	}
}

// closePart releases the current part.
func (cn *catenation) closePart() {
	if cn.release != nil {
		cn.release()
	}
	cn.cur, cn.release = nil, nil
}

// badURL is CATENATE's refusal of a URL (RFC 4469 section 5): NO
// [BADURL url], the URL echoed only when it is plain printable ASCII.
func badURL(url string) error {
	code := "BADURL"
	if len(url) <= 512 && !strings.ContainsFunc(url, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ']' }) && url != "" {
		code += " " + url
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCode(code), Text: "Invalid URL"}
}

// urlPart opens what a CATENATE URL names: a message, or a section or
// range of one (URL-PARTIAL, RFC 5550), in the logged-in user's own
// mailboxes on this server. Any other URL, an unknown mailbox or
// message, a UIDVALIDITY that no longer holds and URLAUTH (not offered)
// are NO [BADURL]; a part that would take the message over APPENDLIMIT
// is NO [TOOBIG], before it is read.
func (s *session) urlPart(raw string) (io.Reader, func(), error) {
	u, err := imapwire.ParseURL(raw)
	if err != nil || u.URLAuth || (u.Absolute && !s.nc.urlNamesSelf(u, s.user.Address)) {
		return nil, nil, badURL(raw)
	}
	var f *maildir.Folder
	if u.Mailbox == "" {
		// Relative to the selected mailbox (RFC 5092 section 7.1).
		if s.sel == nil {
			return nil, nil, badURL(raw)
		}
		f = s.sel.folder
	} else {
		name, err := s.srv.namespace().in(u.Mailbox)
		if err == nil {
			name, err = mailboxName(name)
		}
		if err != nil {
			return nil, nil, badURL(raw)
		}
		if f, err = s.md.Folder(s.ctx, name); err != nil {
			return nil, nil, badURL(raw)
		}
	}
	if u.UIDValidity != 0 {
		st, err := f.Status(s.ctx)
		if err != nil {
			return nil, nil, mapError(err)
		}
		if st.UIDValidity != u.UIDValidity {
			return nil, nil, badURL(raw)
		}
	}
	fh, m, err := f.Open(s.ctx, u.UID)
	if err != nil {
		if errors.Is(err, maildir.ErrNoMessage) {
			return nil, nil, badURL(raw)
		}
		return nil, nil, mapError(err)
	}
	src, size, release, err := messageSource(&s.srv.msgBufs, fh, &m)
	done := func() { release(); fh.Close() }
	if err != nil {
		done()
		return nil, nil, mapError(err)
	}
	from, to := int64(0), size
	var filtered []byte
	if bs := u.Section; bs != nil {
		tree, err := s.structureIn(f, u.UID, fh, src)
		if err != nil {
			done()
			return nil, nil, mapError(err)
		}
		var ok bool
		if from, to, ok = sectionRange(tree, bs); !ok {
			done()
			return nil, nil, badURL(raw)
		}
		if len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
			if filtered, err = bodySection(src, tree, bs); err != nil {
				done()
				return nil, nil, mapError(err)
			}
			from, to = 0, int64(len(filtered))
		}
	}
	if p := u.Partial; p != nil {
		from = min(from+p.Offset, to)
		if p.Size >= 0 {
			to = min(to, from+p.Size)
		}
	}
	if err := s.nc.r.CountURLPart(to - from); err != nil {
		done()
		var e *imapwire.Error
		errors.As(err, &e)
		return nil, nil, &imap.Error{Type: e.Type, Code: e.Code, Text: e.Text}
	}
	if filtered != nil {
		done()
		return bytes.NewReader(filtered[from:to]), func() {}, nil
	}
	if _, err := src.Seek(from, io.SeekStart); err != nil {
		done()
		return nil, nil, mapError(err)
	}
	return io.LimitReader(src, to-from), done, nil
}

// urlNamesSelf reports whether an absolute IMAP URL names this server
// and the logged-in user: its user is user, its host Options.Hostname
// or the address the client reached, its port absent or that
// address's.
func (c *conn) urlNamesSelf(u *imapwire.URL, user string) bool {
	if !strings.EqualFold(u.User, user) {
		return false
	}
	host, port, err := net.SplitHostPort(c.raw.LocalAddr().String())
	if err != nil {
		return false
	}
	if u.Port != 0 && strconv.Itoa(u.Port) != port {
		return false
	}
	h := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	return strings.EqualFold(h, c.srv.opts.Hostname) && c.srv.opts.Hostname != "" || h == host
}

// storeMessage stores one message of APPEND or REPLACE in f: its
// literal, or its CATENATE parts. With err, wireErr is set when the
// command's rest cannot be read as usual (the parser's error).
func (c *conn) storeMessage(f *maildir.Folder, m *imapwire.AppendMessage) (uid uint32, wireErr, err error) {
	var flags []string
	for _, fl := range m.Flags {
		if fl != `\Recent` {
			flags = append(flags, string(fl))
		}
	}
	body := m.Body
	var cat *catenation
	switch {
	case m.Catenate:
		cat = &catenation{c: c}
		body = cat
	case m.Binary:
		// Binary parts are stored as base64 (base64BinaryParts says
		// why); the literal is bounded by the APPEND limit.
		b, err := io.ReadAll(body)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(base64BinaryParts(b))
	}
	uid, err = f.Append(c.sess.ctx, body, flags, m.Date)
	if cat != nil {
		cat.closePart()
		if err != nil {
			wireErr = cat.wireErr
		}
	}
	return uid, wireErr, err
}
