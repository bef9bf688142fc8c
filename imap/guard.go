package imap

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"

	"github.com/emersion/go-imap/v2"
)

// The guard sits on the read side of every connection, between the
// plaintext (after TLS) and imapserver, and follows IMAP's framing:
// lines, literal headers ({n}, {n+}, ~{n}) and the literal bytes they
// announce. It exists first for two gaps in imapserver:
//
//   - A synchronizing literal too large for the command it is part of
//     (other than APPEND's message) is dropped without a reply, and
//     imapserver then waits for bytes the client will never send, as
//     the client waits for a continuation request. The guard answers
//     such a command itself, NO [TOOBIG], and imapserver never sees it.
//   - After refusing a non-synchronizing literal, imapserver reads the
//     literal's bytes as commands: literal data (a message being
//     appended) would be executed. The guard refuses non-synchronizing
//     literals beyond LITERAL-'s 4096 bytes with BAD and closes the
//     connection, as RFC 7888 section 4 allows, before any of it is read.
//
// It also bounds the literals of one command in total (maxLiterals),
// which imapserver holds in memory without counting them against its
// limit on a command's size, and can gather a SEARCH in a charset
// imapserver refuses, to pass it on converted (gatherSearchCharsets).
//
// To stay in step with imapserver, the guard holds back what follows a
// synchronizing literal's header until imapserver has answered it: a
// continuation request ("+") means the literal's bytes come next,
// anything else that the command is over.
//
// STARTTLS is the guard's too: imapserver would read the TLS plaintext
// itself, out of the guard's sight. The guard answers OK, drops what
// the client sent on without waiting for it, and the connection goes,
// below a new tls.Conn, to the protocol engine for TLS connections (see
// conn.startTLS), where the guard goes on. (Should imapserver still
// answer a STARTTLS the guard let through, the guard steps aside after
// its OK.)
//
// A command's first line is held until it is complete, so that a
// command can be answered and dropped whole. Lines longer than the read
// buffer are passed on in parts; a literal too large at the end of such
// a line, or of a line after a literal, ends the connection, as
// imapserver has seen part of the command already.
type guard struct {
	bufs *guardBufs // nil while nothing is held back or gathered
	lit  uint32     // gLiteral: bytes of the literal left; gAwait: its size
	// total counts the bytes of the literals of the command being read
	// (APPEND's message aside), which imapserver holds in memory.
	total uint32

	mode      uint8 // gLine, gLiteral, gAwait, gOff
	await     uint8 // in gAwait: awaitLiteral or awaitStartTLS
	cmd       uint8 // the command being read: cmdOther, cmdAppend, cmdStartTLS, cmdSearch
	cont      bool  // the line being read follows a literal of its command
	partial   bool  // part of the line being read was passed on already
	converted bool  // the next command is a converted SEARCH: not gathered again
}

// guardBufs are the guard's buffers, allocated only while used.
type guardBufs struct {
	held []byte // bytes read but not yet passed on
	// A SEARCH command in a charset imapserver refuses is gathered
	// whole (the guard answers its synchronizing literals), converted
	// to UTF-8 (convertSearchCharset) and passed on. While gathering,
	// lit holds in gLine the start of the line being read in gather.
	gather []byte
}

func (g *guard) gathering() bool { return g.bufs != nil && g.bufs.gather != nil }

func (g *guard) held() []byte {
	if g.bufs == nil {
		return nil
	}
	return g.bufs.held
}

// setHeld sets the held bytes, dropping the buffers when unused.
func (g *guard) setHeld(b []byte) {
	if len(b) == 0 {
		b = nil
	}
	if g.bufs == nil {
		if b == nil {
			return
		}
		g.bufs = &guardBufs{}
	}
	g.bufs.held = b
	if b == nil && g.bufs.gather == nil {
		g.bufs = nil
	}
}

const (
	gLine = iota
	gLiteral
	gAwait
	gOff
)

const (
	awaitLiteral = iota + 1
	awaitStartTLS
)

const (
	cmdOther = iota
	cmdAppend
	cmdStartTLS
	cmdSearch
)

// maxLiteral is the largest literal of a command other than APPEND's
// message: imapserver holds those in memory, up to 4096 bytes; it is
// also LITERAL-'s limit on non-synchronizing literals (RFC 7888).
const maxLiteral = 4096

// maxLiterals bounds the literals of one command (APPEND's message
// aside): imapserver holds them in memory, and its 50 KiB limit on a
// command's size does not count them.
const maxLiterals = 64 << 10

// tailKeep is how much of a line passed on in parts is kept back, to
// find a literal header at its end.
const tailKeep = 32

// verdicts of judge.
const (
	vLine     = iota // a line without a literal: the command ends
	vLiteral         // a non-synchronizing literal follows
	vAwait           // wait for imapserver's answer (sync literal or STARTTLS)
	vRefuse          // answer NO [TOOBIG] and drop the command
	vBye             // answer BAD, say BYE and close
	vStartTLS        // do STARTTLS
	vGather          // gather a SEARCH command to convert its charset
	vContinue        // while gathering: send a continuation request
	vConvert         // a gathered SEARCH is complete
)

// gatherSearchCharsets turns on the conversion of SEARCH commands in a
// charset imapserver refuses (searchcharset.go): off until SEARCH's
// dialog tests expect legacy charsets to be taken.
var gatherSearchCharsets = false

// maxGather bounds a gathered SEARCH command: imapserver's 50 KiB for
// the command and maxLiterals.
const maxGather = 50<<10 + maxLiterals

// guardConfig is what the guard needs to know of the server and the
// connection.
type guardConfig struct {
	appendLimit int64 // APPENDLIMIT
	startTLS    bool  // the guard does STARTTLS
}

// scan is one step of the guard over buf, which starts at a line or
// literal boundary. It passes on buf[:pass] and keeps buf[keep:] for
// later (keep >= pass; bytes between them are dropped: the refused
// command). more asks for more bytes after buf before anything can be
// passed on. act, when not vLine, is a command to answer: buf[:lineEnd]
// is its first line, tag its tag, and the scan stopped there.
type scanResult struct {
	pass, keep int
	more       bool
	act        int
	lineEnd    int
	tag        []byte
}

// scan runs over buf. canGrow says whether more bytes can be read after
// buf into the same buffer (otherwise a first line that fills it is
// passed on in parts).
func (g *guard) scan(buf []byte, canGrow bool, cfg guardConfig) scanResult {
	pos := 0
	for pos < len(buf) {
		switch g.mode {
		case gOff:
			return scanResult{pass: len(buf), keep: len(buf)}
		case gAwait:
			// Nothing more until imapserver has answered.
			return scanResult{pass: pos, keep: pos}
		case gLiteral:
			k := int(min(int64(g.lit), int64(len(buf)-pos)))
			if g.gathering() {
				g.bufs.gather = append(g.bufs.gather, buf[pos:pos+k]...)
			}
			pos += k
			g.lit -= uint32(k)
			if g.lit == 0 {
				g.mode, g.cont = gLine, true
				if g.gathering() {
					g.lit = uint32(len(g.bufs.gather))
				}
			}
			continue
		}
		if g.gathering() {
			r, done := g.gatherLine(buf, &pos)
			if done {
				return r
			}
			continue
		}
		i := bytes.IndexByte(buf[pos:], '\n')
		if i < 0 {
			if pos > 0 {
				return scanResult{pass: pos, keep: pos}
			}
			if canGrow {
				return scanResult{more: true}
			}
			// The line fills the buffer: pass it on but its tail.
			if !g.cont && !g.partial {
				g.cmd = classify(buf)
			}
			g.partial = true
			k := max(len(buf)-tailKeep, 0)
			if k == 0 {
				k = len(buf)
			}
			return scanResult{pass: k, keep: k}
		}
		line := buf[pos : pos+i+1]
		v, size := g.judge(line, cfg)
		if v == vGather {
			if pos > 0 {
				return scanResult{pass: pos, keep: pos}
			}
			if g.bufs == nil {
				g.bufs = &guardBufs{}
			}
			g.bufs.gather, g.lit = make([]byte, 0, 256), 0
			continue
		}
		switch v {
		case vRefuse, vBye, vStartTLS:
			if pos > 0 {
				// Answer once what comes before is answered.
				return scanResult{pass: pos, keep: pos}
			}
			r := scanResult{act: v, lineEnd: len(line)}
			if !g.cont && !g.partial {
				r.tag = tagOf(line)
			}
			return r
		}
		pos += len(line)
		g.partial = false
		switch v {
		case vLine:
			g.cont, g.cmd = false, cmdOther
		case vLiteral:
			g.mode, g.lit = gLiteral, uint32(size)
			if size == 0 {
				g.mode, g.cont = gLine, true
			}
		case vAwait:
			g.mode, g.lit = gAwait, uint32(min(size, math.MaxUint32))
			g.await = awaitLiteral
			if size < 0 {
				g.await, g.lit = awaitStartTLS, 0
			}
			return scanResult{pass: pos, keep: pos}
		}
	}
	if g.gathering() {
		return scanResult{keep: pos} // gathered, not passed on
	}
	return scanResult{pass: pos, keep: pos}
}

// judge decides what to do at the end of line. For vLiteral and vAwait
// it returns the literal's size; -1 with vAwait for STARTTLS. It sets
// g.cmd on a command's first line.
func (g *guard) judge(line []byte, cfg guardConfig) (int, int64) {
	appendLimit := cfg.appendLimit
	first := !g.cont && !g.partial
	if first {
		g.cmd = classify(line)
		g.total = 0
		converted := g.converted
		g.converted = false
		if gatherSearchCharsets && g.cmd == cmdSearch && !converted && searchCharsetToConvert(line) {
			return vGather, 0
		}
	}
	h := literalHeader(line, g.partial)
	if !h.ok {
		if first && g.cmd == cmdStartTLS {
			if cfg.startTLS && isStartTLS(line) {
				return vStartTLS, 0
			}
			return vAwait, -1
		}
		return vLine, 0
	}
	// APPEND's message, unless this literal is the mailbox name right
	// after the command name.
	message := g.cmd == cmdAppend && !(first && h.start == appendArgAt(line))
	switch {
	case h.minus || (h.binary && !message):
		// Neither is syntax imapserver reads as a literal; data follows.
		if h.nonSync {
			return vBye, 0
		}
	case h.nonSync:
		// imapserver refuses APPEND's message beyond APPENDLIMIT
		// before reading it, whatever the literal.
		if h.size > maxLiteral || (message && h.size > appendLimit) || !g.count(h.size, message) {
			return vBye, 0
		}
		return vLiteral, h.size
	case message:
		// imapserver applies APPENDLIMIT and answers either way.
		return vAwait, h.size
	case h.size > maxLiteral:
		if first {
			return vRefuse, 0
		}
		return vBye, 0
	case !g.count(h.size, message):
		// Too much in literals: part of the command is read already.
		return vBye, 0
	}
	return vAwait, h.size
}

// count adds a literal of size bytes to the command's total, unless it
// is APPEND's message, and reports whether the total is within
// maxLiterals.
func (g *guard) count(size int64, message bool) bool {
	if message {
		return true
	}
	if int64(g.total)+size > maxLiterals {
		return false
	}
	g.total += uint32(size)
	return true
}

// gatherLine goes on gathering a SEARCH command at buf[*pos], in gLine.
// It reports done with the scan's result when the scan stops there:
// the command is complete, too large, or a literal needs a
// continuation request. Gathered bytes are not passed on.
func (g *guard) gatherLine(buf []byte, pos *int) (scanResult, bool) {
	i := bytes.IndexByte(buf[*pos:], '\n')
	end := len(buf)
	if i >= 0 {
		end = *pos + i + 1
	}
	g.bufs.gather = append(g.bufs.gather, buf[*pos:end]...)
	*pos = end
	stop := scanResult{keep: end, lineEnd: end, tag: tagOf(g.bufs.gather)}
	if len(g.bufs.gather) > maxGather {
		stop.act = vBye
		return stop, true
	}
	if i < 0 {
		return scanResult{}, false
	}
	h := literalHeader(g.bufs.gather[g.lit:], false)
	switch {
	case !h.ok:
		stop.act = vConvert
		return stop, true
	case h.minus || h.binary || h.size > maxLiteral || !g.count(h.size, false):
		if h.nonSync {
			stop.act = vBye
		} else {
			stop.act = vRefuse
		}
		return stop, true
	}
	g.mode, g.lit = gLiteral, uint32(h.size)
	if !h.nonSync {
		// The command is passed on at once: imapserver must not ask
		// for this literal again.
		brace := bytes.LastIndexByte(g.bufs.gather, '}')
		g.bufs.gather = append(g.bufs.gather[:brace+1], g.bufs.gather[brace:]...)
		g.bufs.gather[brace] = '+'
		stop.act = vContinue
	}
	if h.size == 0 {
		g.mode, g.lit = gLine, uint32(len(g.bufs.gather))
	}
	if stop.act != 0 {
		return stop, true
	}
	return scanResult{}, false
}

// searchCharsetToConvert reports whether a SEARCH command's first line
// names a CHARSET other than UTF-8 and US-ASCII, or one given as a
// literal.
func searchCharsetToConvert(line []byte) bool {
	i := bytes.Index(bytes.ToUpper(line), []byte(" CHARSET "))
	if i < 0 {
		return false
	}
	name := line[i+len(" CHARSET "):]
	if len(name) > 0 && name[0] == '"' {
		name = name[1:]
		if j := bytes.IndexByte(name, '"'); j >= 0 {
			name = name[:j]
		}
	} else if j := bytes.IndexAny(name, " \r\n"); j >= 0 {
		name = name[:j]
	}
	enc, err := searchEncoding(string(name))
	return enc != nil || err != nil
}

// header is a literal header at the end of a line.
type header struct {
	ok      bool
	size    int64 // saturated: any size beyond 1<<40 is 1<<40
	nonSync bool  // {n+}, LITERAL+ and LITERAL-
	minus   bool  // {n-}: not IMAP syntax
	binary  bool  // ~{n}, literal8
	start   int   // index of '{' or '~'
}

// literalHeader finds a literal header at the end of line, as
// imapserver's decoder reads one: "{" digits ["+"] "}" [SP] [CR] LF.
// When cut (the start of the line was passed on), a run of digits
// reaching the start of what is left counts as a header of unknown
// (huge) size.
func literalHeader(line []byte, cut bool) header {
	var h header
	e := len(line) - 1 // the LF
	if e > 0 && line[e-1] == '\r' {
		e--
	}
	if e > 0 && line[e-1] == ' ' {
		e--
	}
	if e == 0 || line[e-1] != '}' {
		return h
	}
	e--
	if e > 0 && (line[e-1] == '+' || line[e-1] == '-') {
		h.nonSync = true
		h.minus = line[e-1] == '-'
		e--
	}
	d := e
	for d > 0 && line[d-1] >= '0' && line[d-1] <= '9' {
		d--
	}
	const huge = 1 << 40
	if d == 0 && cut && e > 0 {
		h.ok, h.size = true, huge
		return h
	}
	if d == e || d == 0 || line[d-1] != '{' {
		return header{}
	}
	h.ok = true
	h.start = d - 1
	for _, c := range line[d:e] {
		h.size = h.size*10 + int64(c-'0')
		if h.size > huge {
			h.size = huge
			break
		}
	}
	if h.start > 0 && line[h.start-1] == '~' {
		h.binary = true
		h.start--
	}
	return h
}

// classify names the command on a command's first line: the word after
// the tag (after "UID" for UID commands).
func classify(line []byte) uint8 {
	_, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return cmdOther
	}
	name := word(rest)
	if bytes.EqualFold(name, []byte("UID")) {
		name = word(rest[len(name):])
	}
	switch {
	case bytes.EqualFold(name, []byte("APPEND")):
		return cmdAppend
	case bytes.EqualFold(name, []byte("STARTTLS")):
		return cmdStartTLS
	case bytes.EqualFold(name, []byte("SEARCH")):
		return cmdSearch
	}
	return cmdOther
}

// isStartTLS reports whether line is a STARTTLS command as imapserver
// reads one: nothing after the name but CRLF.
func isStartTLS(line []byte) bool {
	_, rest, _ := bytes.Cut(line, []byte{' '})
	rest = rest[len("STARTTLS"):]
	rest, _ = bytes.CutPrefix(rest, []byte{' '})
	rest, _ = bytes.CutPrefix(rest, []byte{'\r'})
	return string(rest) == "\n"
}

// word is b's first word, after at most one space.
func word(b []byte) []byte {
	b, _ = bytes.CutPrefix(b, []byte{' '})
	if i := bytes.IndexAny(b, " \r\n"); i >= 0 {
		return b[:i]
	}
	return b
}

// appendArgAt is where an APPEND command's first argument (the mailbox)
// starts on its first line.
func appendArgAt(line []byte) int {
	tag, rest, _ := bytes.Cut(line, []byte{' '})
	return len(tag) + 1 + len(word(rest)) + 1
}

// tagOf is the tag of a command's first line, or "*" when it has none
// that could be one (an atom without '+').
func tagOf(line []byte) []byte {
	tag, _, _ := bytes.Cut(line, []byte{' '})
	if len(tag) == 0 || len(tag) > 64 {
		return []byte("*")
	}
	for _, c := range tag {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`(){%*"\]+`), c) >= 0 {
			return []byte("*")
		}
	}
	return tag
}

// answered is called with what imapserver writes: in gAwait, its first
// write after the line it waits on that is not an untagged response is
// the answer, a continuation request or the command's tagged reply. It
// reports whether STARTTLS was accepted.
func (g *guard) answered(p []byte) (startTLS bool) {
	if g.mode != gAwait || len(p) == 0 || p[0] == '*' {
		// Untagged responses (IDLE's last updates, a shutdown's BYE)
		// answer nothing.
		return false
	}
	switch {
	case g.await == awaitLiteral && p[0] == '+':
		g.mode = gLiteral
		if g.lit == 0 {
			g.mode, g.cont = gLine, true
		}
	case g.await == awaitStartTLS && acceptsStartTLS(p):
		g.mode = gOff
		return true
	default:
		g.mode, g.cont, g.cmd = gLine, false, cmdOther
	}
	g.await = 0
	return false
}

// acceptsStartTLS reports whether p is imapserver's reply accepting
// STARTTLS.
func acceptsStartTLS(p []byte) bool {
	return bytes.HasSuffix(p, startTLSOK) && bytes.IndexByte(p, '\n') == len(p)-1 && p[0] != '*' && p[0] != '+'
}

// unanswered is called when imapserver reads on without answering what
// the guard waits on: the command is over.
func (g *guard) unanswered() {
	if g.mode == gAwait {
		g.mode, g.cont, g.cmd, g.await = gLine, false, cmdOther, 0
	}
}

// endCommand ends a command the guard answered or gathered.
func (g *guard) endCommand() {
	g.mode, g.lit, g.cont, g.partial, g.cmd = gLine, 0, false, false, cmdOther
	if g.bufs != nil {
		g.bufs.gather = nil
		g.setHeld(g.bufs.held)
	}
}

// keepBack puts b (bytes read but not passed on) before what is held.
func (g *guard) keepBack(b []byte) {
	if len(b) == 0 {
		return
	}
	held := g.held()
	h := make([]byte, len(b)+len(held))
	copy(h, b)
	copy(h[len(b):], held)
	g.setHeld(h)
}

var (
	startTLSOK    = []byte(" OK Begin TLS negotiation now\r\n")
	tooBig        = []byte(" NO [TOOBIG] Literals are limited to 4096 bytes for this command\r\n")
	nonSyncTooBig = []byte(" BAD [TOOBIG] Non-synchronizing literals are limited to 4096 bytes\r\n")
)

// guardedRead is Read through the guard: r reads the connection's
// plaintext and w writes replies to it.
func (c *conn) guardedRead(r io.Reader, w io.Writer, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	g := &c.g
	n := 0            // bytes in p to scan
	moreHeld := false // bytes held beyond those
	takeHeld := func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		g.unanswered()
		n = copy(p, g.held())
		g.setHeld(g.held()[n:])
		moreHeld = g.held() != nil
		return g.mode == gOff
	}
	if takeHeld() {
		if n > 0 {
			return n, nil
		}
		return r.Read(p)
	}
	for {
		if n == 0 {
			m, err := r.Read(p)
			if m == 0 {
				return 0, err
			}
			n = m
		}
		cfg := guardConfig{appendLimit: int64(c.srv.opts.AppendLimit), startTLS: c.canStartTLS()}
		c.wmu.Lock()
		res := g.scan(p[:n], !moreHeld && n < len(p), cfg)
		if !res.more && res.act == vLine {
			g.keepBack(p[res.keep:n])
		}
		c.wmu.Unlock()
		switch res.act {
		case vRefuse:
			c.guardReply(w, res.tag, tooBig)
			c.wmu.Lock()
			g.endCommand()
			g.keepBack(p[res.lineEnd:n])
			c.wmu.Unlock()
		case vContinue:
			if err := c.guardReply(w, []byte("+"), []byte(" Ready for literal data\r\n")); err != nil {
				return 0, err
			}
			c.wmu.Lock()
			g.keepBack(p[res.keep:n])
			c.wmu.Unlock()
		case vConvert:
			c.wmu.Lock()
			cmd := g.bufs.gather
			g.endCommand()
			g.keepBack(p[res.keep:n])
			c.wmu.Unlock()
			out, err := convertSearchCharset(cmd)
			var ie *imap.Error
			if errors.As(err, &ie) {
				text := " " + string(ie.Type)
				if ie.Code != "" {
					text += " [" + string(ie.Code) + "]"
				}
				c.guardReply(w, res.tag, []byte(text+" "+ie.Text+"\r\n"))
				break
			}
			if err != nil {
				out = cmd
			}
			c.wmu.Lock()
			g.converted = true
			g.keepBack(out)
			c.wmu.Unlock()
		case vStartTLS:
			if err := c.guardReply(w, res.tag, startTLSOK); err != nil {
				return 0, err
			}
			c.startTLS()
			return 0, errHandedOver
		case vBye:
			if res.tag != nil {
				c.guardReply(w, res.tag, nonSyncTooBig)
			}
			c.guardBye(w)
			return 0, net.ErrClosed
		default:
			if res.more {
				m, err := r.Read(p[n:])
				if m == 0 {
					return 0, err
				}
				n += m
				continue
			}
			if res.pass > 0 {
				return res.pass, nil
			}
		}
		// Nothing to pass on yet: go on with what is held.
		if takeHeld() && n > 0 {
			return n, nil
		}
	}
}
