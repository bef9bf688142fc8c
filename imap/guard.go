package imap

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"unicode/utf8"

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
// limit on a command's size. It answers itself, and drops, the commands
// imapserver would answer NO [SERVERBUG] or worse: a mailbox name its
// decoder refuses (badMailboxArg: BAD [CLIENTBUG]; a command whose
// mailbox names may come as literals is gathered whole, APPEND up to
// its message, to check them), and a SEARCH nested
// deeper than maxSearchNesting (BAD [LIMIT]: imapserver's parser
// recurses once per level, before login too), with an unknown key or a
// malformed date (BAD [CLIENTBUG]). It gathers every SEARCH command to
// check it (searchNest) and, in a charset imapserver refuses, to pass
// it on converted to UTF-8 (convertSearchCharset).
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
	cmd       uint8 // the command being read: cmdOther, cmdAppend, cmdStartTLS, cmdSearch, cmdMailbox
	cont      bool  // the line being read follows a literal of its command
	partial   bool  // part of the line being read was passed on already
	converted bool  // the next command is a converted SEARCH: not gathered again
}

// guardBufs are the guard's buffers, allocated only while used.
type guardBufs struct {
	held []byte // bytes read but not yet passed on
	// A SEARCH command is gathered whole (the guard answers its
	// synchronizing literals), its nesting and keys checked as it comes
	// (nest), converted to UTF-8 when in another charset
	// (convertSearchCharset) and passed on. A command the guard
	// answers itself while its rest is still to come is read on and
	// dropped (drop), gather then keeping only the end of the line.
	gather []byte
	nest   *searchNest // a SEARCH command's keys, fed as they come
	tag    []byte      // the gathered command's tag
	reply  []byte      // the guard's answer, to write at the next stop
	// subst is passed on in place of a SEARCH too deep whose RETURN
	// options hold SAVE: the same command, but with the shallowest
	// nesting Search answers BAD [LIMIT], which also empties "$" as
	// RFC 5182 asks of a failed SAVE.
	subst []byte
	line  int  // bytes of the line being read
	size  int  // bytes of the command's lines
	drop  bool // the command is answered: read on and dropped
	first bool // the line being read is the command's first
}

// startGather starts gathering (or, with a reply, dropping) the command
// whose first line starts buf.
func (g *guard) startGather(buf []byte, search bool, reply []byte) {
	b := &guardBufs{held: g.held(), gather: make([]byte, 0, 256), first: true}
	b.tag = append(b.tag, tagOf(buf)...)
	if search {
		b.nest = &searchNest{}
	}
	b.reply, b.drop = reply, reply != nil
	g.bufs, g.lit = b, 0
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
	cmdMailbox // a command with mailbox names (badMailboxArg's), APPEND aside
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
	vGather          // gather a SEARCH command
	vContinue        // while gathering: send a continuation request
	vConvert         // a gathered SEARCH is complete
	vDrop            // answer BAD [CLIENTBUG] (a mailbox name) and drop the command
	vAnswer          // write scanResult.reply, the guard's answer to the command
	vPass            // pass scanResult.reply on in place of the dropped command
)

// maxLine is imapserver's limit on a command line (and on a command's
// lines in total).
const maxLine = 50 << 10

// maxGather bounds a gathered SEARCH command's lines.
const maxGather = maxLine

// The guard's own answers, after the tag.
var (
	searchNestReply = []byte(" BAD [LIMIT] " + errSearchTooDeep.Text + "\r\n")
	searchUnknown   = []byte(" BAD [CLIENTBUG] Unknown SEARCH key\r\n")
	searchBadDate   = []byte(" BAD [CLIENTBUG] SEARCH date is not d-Mon-yyyy\r\n")
	badMailbox      = []byte(" BAD [CLIENTBUG] " + errBadMailboxArgText + "\r\n")
	lineTooLong     = []byte(" BAD [TOOBIG] Command line too long\r\n")
)

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
	reply      []byte // vAnswer's answer; vBye's, when not nonSyncTooBig
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
			if g.gathering() && !g.bufs.drop {
				g.bufs.gather = append(g.bufs.gather, buf[pos:pos+k]...)
			}
			pos += k
			g.lit -= uint32(k)
			if g.lit == 0 {
				g.mode, g.cont = gLine, true
			}
			continue
		}
		if g.gathering() {
			r, done := g.gatherLine(buf, &pos, cfg)
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
				g.total = 0
				converted := g.converted
				g.converted = false
				if g.cmd == cmdSearch && !converted {
					g.startGather(buf, true, nil)
					continue
				}
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
		if v == vGather || v == vDrop {
			if pos > 0 {
				return scanResult{pass: pos, keep: pos}
			}
			var reply []byte
			if v == vDrop {
				reply = badMailbox
			}
			g.startGather(line, g.cmd == cmdSearch, reply)
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
		if g.cmd == cmdSearch && !converted {
			return vGather, 0
		}
		if (g.cmd == cmdMailbox || g.cmd == cmdAppend) && badMailboxArg(line) {
			return vDrop, 0
		}
		if h := literalHeader(line, false); h.ok && !converted &&
			(g.cmd == cmdMailbox || g.cmd == cmdAppend && h.start == appendArgAt(line)) {
			// A mailbox name may come as a literal: the command is
			// gathered to check it whole (APPEND's up to its message).
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

// gatherLine goes on gathering (or dropping) a command at buf[*pos], in
// gLine. It reports done with the scan's result when the scan stops
// there: the command is complete or dropped, too large, answered, or a
// literal needs a continuation request. Gathered bytes are not passed
// on.
func (g *guard) gatherLine(buf []byte, pos *int, cfg guardConfig) (scanResult, bool) {
	b := g.bufs
	i := bytes.IndexByte(buf[*pos:], '\n')
	end := len(buf)
	if i >= 0 {
		end = *pos + i + 1
	}
	chunk := buf[*pos:end]
	*pos = end
	b.line += len(chunk)
	b.size += len(chunk)
	stop := scanResult{keep: end, lineEnd: end, tag: b.tag}
	if b.line > maxLine || b.size > maxGather {
		stop.act, stop.reply = vBye, lineTooLong
		return stop, true
	}
	if !b.drop && b.nest != nil {
		feed := chunk
		if b.first && b.line == len(chunk) {
			feed = chunk[searchArgsAt(chunk):]
		}
		switch {
		case !b.nest.feed(feed):
			b.reply = searchNestReply
			if b.first {
				b.subst = saveSubst(chunk)
			}
			if b.subst != nil {
				b.reply = nil
			}
		case b.nest.unknown:
			b.reply = searchUnknown
		case b.nest.badDate:
			b.reply = searchBadDate
		}
		if b.reply != nil || b.subst != nil {
			b.drop = true
			b.gather = b.gather[:0]
		}
	}
	b.gather = append(b.gather, chunk...)
	if b.drop && len(b.gather) > tailKeep {
		// Only a literal header at the end of the line matters now.
		b.gather = b.gather[:copy(b.gather, b.gather[len(b.gather)-tailKeep:])]
	}
	if i < 0 {
		return g.answer(stop)
	}
	var h header
	message := false // APPEND's message follows
	if b.drop {
		h = literalHeader(b.gather, b.line > len(b.gather))
		b.gather = b.gather[:0]
	} else {
		line := b.gather[len(b.gather)-b.line:]
		h = literalHeader(line, false)
		message = g.cmd == cmdAppend && h.ok && !(b.first && h.start == appendArgAt(line))
	}
	b.line, b.first = 0, false
	// As judge: a non-synchronizing literal beyond LITERAL-'s limit, or
	// APPEND's message beyond APPENDLIMIT, ends the connection.
	nonSyncTooBig := h.minus || h.size > maxLiteral || (g.cmd == cmdAppend && h.size > cfg.appendLimit)
	if message {
		// APPEND's mailbox came as a literal: it is checked, and the
		// message left to go as imapserver reads it.
		if !badMailboxArg(inlineLiterals(b.gather)) {
			stop.act = vConvert
			return stop, true
		}
		if h.nonSync && nonSyncTooBig {
			stop.act = vBye
			return stop, true
		}
		b.drop, b.reply = true, badMailbox
		if !h.nonSync {
			g.endCommand()
			stop.act, stop.reply = vAnswer, badMailbox
			return stop, true
		}
		b.gather = b.gather[:0]
		g.mode, g.lit = gLiteral, uint32(h.size)
		if h.size == 0 {
			g.mode = gLine
		}
		return g.answer(stop)
	}
	if b.drop {
		switch {
		case !h.ok || !h.nonSync:
			// The command ends here: a synchronizing literal is not
			// sent, its command answered.
			reply, subst := b.reply, b.subst
			g.endCommand()
			if subst != nil {
				stop.act, stop.reply = vPass, subst
				return stop, true
			}
			if reply == nil {
				return stop, true
			}
			stop.act, stop.reply = vAnswer, reply
			return stop, true
		case nonSyncTooBig:
			stop.act = vBye
			return stop, true
		}
		g.mode, g.lit = gLiteral, uint32(h.size)
		if h.size == 0 {
			g.mode = gLine
		}
		return g.answer(stop)
	}
	switch {
	case !h.ok:
		stop.act = vConvert
		if b.nest == nil && badMailboxArg(inlineLiterals(b.gather)) {
			g.endCommand()
			stop.act, stop.reply = vAnswer, badMailbox
		}
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
		brace := bytes.LastIndexByte(b.gather, '}')
		b.gather = append(b.gather[:brace+1], b.gather[brace:]...)
		b.gather[brace] = '+'
		stop.act = vContinue
	}
	if h.size == 0 {
		g.mode = gLine
	}
	if stop.act != 0 {
		return stop, true
	}
	return scanResult{}, false
}

// answer stops the scan at stop to write the guard's pending answer,
// if there is one.
func (g *guard) answer(stop scanResult) (scanResult, bool) {
	if g.bufs.reply == nil {
		return scanResult{}, false
	}
	stop.act, stop.reply = vAnswer, g.bufs.reply
	g.bufs.reply = nil
	return stop, true
}

// saveSubst is the command to pass on in place of a SEARCH too deep
// whose first line starts chunk, when its RETURN options hold SAVE.
func saveSubst(chunk []byte) []byte {
	at := searchArgsAt(chunk)
	rest := chunk[at:]
	if len(rest) < 8 || !bytes.EqualFold(rest[:8], []byte("RETURN (")) {
		return nil
	}
	end := bytes.IndexByte(rest, ')')
	if end < 0 || !bytes.Contains(bytes.ToUpper(rest[:end]), []byte("SAVE")) {
		return nil
	}
	out := append([]byte(nil), chunk[:at+end+1]...)
	out = append(out, ' ')
	out = append(out, bytes.Repeat([]byte("NOT "), maxSearchNesting+1)...)
	return append(out, "ALL\r\n"...)
}

// searchArgsAt is where a SEARCH or UID SEARCH command's arguments
// start on its first line.
func searchArgsAt(line []byte) int {
	tag, _, _ := bytes.Cut(line, []byte{' '})
	at := min(len(tag)+1, len(line))
	for k := 0; k < 2; k++ {
		w := word(line[at:])
		at = min(at+len(w)+1, len(line)) // and the space after it
		if !bytes.EqualFold(w, []byte("UID")) {
			break
		}
	}
	return at
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
	if commandIs(name, "UID") {
		name = word(rest[len(name):])
	}
	switch {
	case commandIs(name, "APPEND"):
		return cmdAppend
	case commandIs(name, "STARTTLS"):
		return cmdStartTLS
	case commandIs(name, "SEARCH"):
		return cmdSearch
	}
	for _, m := range mailboxCommands {
		if commandIs(name, m) {
			return cmdMailbox
		}
	}
	return cmdOther
}

// commandIs reports whether name is the command upper (in upper case)
// as imapserver reads command names: strings.ToUpper, under which "ı"
// is "I", which bytes.EqualFold does not take for "i".
func commandIs(name []byte, upper string) bool {
	for _, c := range name {
		if c >= utf8.RuneSelf {
			return strings.ToUpper(string(name)) == upper
		}
	}
	return bytes.EqualFold(name, []byte(upper))
}

// mailboxCommands are the commands whose mailbox names badMailboxArg
// checks, APPEND aside (cmdAppend, gathered only up to its message).
var mailboxCommands = [...]string{"CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
	"STATUS", "SELECT", "EXAMINE", "COPY", "MOVE", "LIST", "LSUB"}

// inlineLiterals writes a gathered command (lines, literals after their
// headers) as one line, each literal as a quoted string, for
// badMailboxArg. The quoted strings may hold CR, LF and NUL, which
// badMailboxArg reads as the control characters they are.
func inlineLiterals(cmd []byte) []byte {
	out := make([]byte, 0, len(cmd)+16)
	for len(cmd) > 0 {
		i := bytes.IndexByte(cmd, '\n')
		if i < 0 {
			return append(out, cmd...)
		}
		line := cmd[:i+1]
		h := literalHeader(line, false)
		if !h.ok || int64(len(cmd)-len(line)) < h.size {
			return append(out, cmd...)
		}
		out = append(out, line[:h.start]...)
		out = append(out, '"')
		for _, c := range cmd[len(line) : len(line)+int(h.size)] {
			if c == '"' || c == '\\' {
				out = append(out, '\\')
			}
			out = append(out, c)
		}
		out = append(out, '"')
		cmd = cmd[len(line)+int(h.size):]
	}
	return out
}

// isStartTLS reports whether line is a STARTTLS command as imapserver
// reads one: nothing after the name but CRLF.
func isStartTLS(line []byte) bool {
	_, rest, _ := bytes.Cut(line, []byte{' '})
	// After the name, however spelled (classify took it for STARTTLS).
	i := bytes.IndexAny(rest, " \r\n")
	if i <= 0 {
		return false
	}
	rest = rest[i:]
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
		held := g.bufs.held
		g.bufs = nil
		g.setHeld(held)
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
	// Neither changes while imapserver is reading.
	cfg := guardConfig{appendLimit: int64(c.srv.opts.AppendLimit), startTLS: c.canStartTLS()}
	for {
		if n == 0 {
			m, err := r.Read(p)
			if m == 0 {
				return 0, err
			}
			n = m
		}
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
		case vAnswer:
			if err := c.guardReply(w, res.tag, res.reply); err != nil {
				return 0, err
			}
			c.wmu.Lock()
			g.keepBack(p[res.keep:n])
			c.wmu.Unlock()
		case vPass:
			c.wmu.Lock()
			g.converted = true
			g.keepBack(p[res.keep:n])
			g.keepBack(res.reply)
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
				reply := nonSyncTooBig
				if res.reply != nil {
					reply = res.reply
				}
				c.guardReply(w, res.tag, reply)
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
