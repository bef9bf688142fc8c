package imapwire

import (
	"encoding/base64"
	"io"

	"github.com/emersion/go-imap/v2"
)

// isTagChar reports whether c may be in a tag: an ASCII ASTRING-CHAR
// but "+".
func isTagChar(c byte) bool { return isAStringChar(c) && c != '+' && c < 0x80 }

// ReadCommand reads the next command. A command the grammar refuses
// comes back as an *Error with the rest of the command skipped (or, with
// Close set, not), to be answered and the next command read; other
// errors are the connection's. An APPEND (or REPLACE) command returns
// with its first message's Body unread: read it, then call NextMessage
// (and NextPart for CATENATE) until it returns nil.
func (r *Reader) ReadCommand() (cmd *Command, err error) {
	if r.refused {
		return nil, ErrRefused
	}
	if r.pending != nil || r.body != nil {
		// The previous command's messages were left unread.
		if err := r.abandon(); err != nil {
			return nil, err
		}
	}
	r.Limits.setDefaults()
	r.tag, r.line, r.lits, r.ended, r.depth, r.save = "", 0, 0, false, 0, false
	r.appendMsgs, r.appendTotal = 0, 0
	defer r.recover(&err)
	// Empty lines between commands are skipped, as Dovecot does.
	for {
		c := r.peek()
		if c != '\r' && c != '\n' {
			break
		}
		r.take()
		r.line = 0
	}
	tag := r.readWhile(isTagChar, "a tag")
	r.tag = tag
	cmd = &Command{Tag: tag}
	r.sp()
	cmd.Name = r.upperAtom("a command name")
	if cmd.Name == "UID" {
		r.sp()
		cmd.UID = true
		cmd.Name = r.upperAtom("a command name")
		switch cmd.Name {
		case "FETCH", "STORE", "COPY", "MOVE", "SEARCH", "SORT", "THREAD", "EXPUNGE", "REPLACE":
		default:
			r.syntax("Unknown UID command")
		}
	}
	if r.Check != nil {
		if e := r.Check(cmd.Name, cmd.UID); e != nil {
			refusal := *e
			panic(&refusal)
		}
	}
	cmd.Args = r.arguments(cmd)
	if !r.ended && r.pending == nil {
		r.eol()
	}
	return cmd, nil
}

// abandon reads and drops what is left of an APPEND whose messages the
// caller did not read.
func (r *Reader) abandon() (err error) {
	for r.pending != nil || r.body != nil {
		if r.pending == nil {
			r.drainBody()
			break
		}
		err = r.next()
		if err != nil {
			return err
		}
	}
	return nil
}

// arguments parses cmd's arguments after its name.
func (r *Reader) arguments(cmd *Command) any {
	switch cmd.Name {
	case "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "NAMESPACE", "IDLE",
		"CHECK", "CLOSE", "UNSELECT", "UNAUTHENTICATE":
		return nil
	case "EXPUNGE":
		if !cmd.UID {
			return nil
		}
		r.sp()
		return &Expunge{Set: r.seqSet(true).(imap.UIDSet)}
	case "LOGIN":
		r.sp()
		u := r.astring("a user name")
		r.sp()
		return &Login{Username: u, Password: r.astring("a password")}
	case "AUTHENTICATE":
		r.sp()
		a := &Authenticate{Mechanism: r.upperAtom("a SASL mechanism")}
		if r.maybe(' ') {
			a.HasInitial = true
			a.InitialResponse = r.saslResponse()
		}
		return a
	case "ENABLE":
		e := &Enable{}
		for len(e.Caps) == 0 || !r.atEOL() {
			r.sp()
			e.Caps = append(e.Caps, r.upperAtom("a capability"))
			if len(e.Caps) > 64 {
				r.fail(imap.ResponseCodeLimit, "Too many capabilities")
			}
		}
		return e
	case "ID":
		return r.id()
	case "COMPRESS":
		r.sp()
		return &Compress{Algorithm: r.upperAtom("a compression algorithm")}
	case "SELECT", "EXAMINE":
		return r.selectArgs(cmd.Name == "EXAMINE")
	case "CREATE":
		return r.create()
	case "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT":
		r.sp()
		return &Mailbox{Name: r.mailbox()}
	case "RENAME":
		r.sp()
		from := r.mailbox()
		r.sp()
		return &Rename{From: from, To: r.mailbox()}
	case "LIST", "LSUB":
		return r.listArgs(cmd.Name == "LSUB")
	case "STATUS":
		return r.status()
	case "APPEND":
		r.sp()
		a := &Append{Mailbox: r.appendMailbox()}
		r.sp()
		a.Message = r.appendMessage(true)
		return a
	case "REPLACE":
		r.sp()
		a := &Append{Replace: r.seqSet(cmd.UID)}
		r.sp()
		a.Mailbox = r.appendMailbox()
		r.sp()
		a.Message = r.appendMessage(false)
		return a
	case "FETCH":
		return r.fetch(cmd.UID)
	case "STORE":
		return r.store(cmd.UID)
	case "COPY", "MOVE":
		r.sp()
		c := &Copy{Set: r.seqSet(cmd.UID)}
		r.sp()
		c.Mailbox = r.mailbox()
		return c
	case "SEARCH":
		return r.search()
	case "SORT":
		return r.sort()
	case "THREAD":
		return r.thread()
	case "GETQUOTA":
		r.sp()
		return &QuotaRoot{Root: r.astring("a quota root")}
	case "SETQUOTA":
		return r.setQuota()
	case "NOTIFY":
		return r.notify()
	case "CANCELUPDATE":
		c := &CancelUpdate{}
		for len(c.Tags) == 0 || !r.atEOL() {
			r.sp()
			c.Tags = append(c.Tags, r.str())
		}
		return c
	}
	r.syntax("Unknown command")
	return nil
}

// saslResponse reads a base64 SASL response, "=" for an empty one.
func (r *Reader) saslResponse() []byte {
	if r.maybe('=') {
		return []byte{}
	}
	s := r.readWhile(func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
	}, "a base64 response")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		r.syntax("Invalid base64")
	}
	return b
}

// ReadSASLResponse reads a client's line in an AUTHENTICATE exchange:
// base64, or "*" to cancel (cancelled is then true).
func (r *Reader) ReadSASLResponse() (resp []byte, cancelled bool, err error) {
	if r.refused {
		return nil, false, ErrRefused
	}
	r.Limits.setDefaults()
	r.line, r.ended = 0, false
	defer r.recover(&err)
	if r.maybe('*') {
		r.eol()
		return nil, true, nil
	}
	if r.atEOL() {
		r.eol()
		return []byte{}, false, nil
	}
	resp = r.saslResponse()
	r.eol()
	return resp, false, nil
}

// ReadIdleDone reads the line that ends IDLE: DONE, in any case, or
// another line (ErrIdleNotDone).
func (r *Reader) ReadIdleDone() (err error) {
	if r.refused {
		return ErrRefused
	}
	r.Limits.setDefaults()
	r.line, r.ended = 0, false
	defer r.recover(&err)
	var b []byte
	for !r.atEOL() {
		b = append(b, r.take())
	}
	r.eol()
	if asciiUpper(string(b)) != "DONE" {
		return ErrIdleNotDone
	}
	return nil
}

// id reads ID's parameter list (RFC 2971: at most 30 pairs).
func (r *Reader) id() *ID {
	r.sp()
	id := &ID{}
	if r.peek() != '(' {
		if r.upperAtom("NIL or a list") != "NIL" {
			r.syntax("Expected NIL or a list")
		}
		return id
	}
	id.Params = [][2]string{}
	r.list(func() {
		k := r.str()
		r.sp()
		v, _ := r.nstring()
		if len(id.Params) == 30 {
			r.fail(imap.ResponseCodeLimit, "Too many ID parameters")
		}
		id.Params = append(id.Params, [2]string{k, v})
	})
	return id
}

// selectArgs reads SELECT's and EXAMINE's mailbox and parameters.
func (r *Reader) selectArgs(readOnly bool) *Select {
	r.sp()
	s := &Select{Mailbox: r.mailbox(), ReadOnly: readOnly}
	if !r.maybe(' ') {
		return s
	}
	r.list(func() {
		switch r.upperAtom("a SELECT parameter") {
		case "CONDSTORE":
			s.CondStore = true
		case "QRESYNC":
			if s.QResync != nil {
				r.syntax("QRESYNC given twice")
			}
			r.sp()
			s.QResync = r.qresync()
		default:
			r.syntax("Unknown SELECT parameter")
		}
	})
	return s
}

// qresync reads QRESYNC's parameters (RFC 7162 section 3.2.5).
func (r *Reader) qresync() *QResync {
	q := &QResync{}
	r.expect('(', "QRESYNC's parameters")
	q.UIDValidity = r.nzNumber()
	r.sp()
	q.ModSeq = r.number64()
	if r.maybe(' ') {
		if r.peek() != '(' {
			q.KnownUIDs = r.knownSet(true).(imap.UIDSet)
			if !r.maybe(' ') {
				r.expect(')', "the end of QRESYNC's parameters")
				return q
			}
		}
		r.expect('(', "QRESYNC's sequence match data")
		seqs := r.knownSet(false).(imap.SeqSet)
		r.sp()
		uids := r.knownSet(true).(imap.UIDSet)
		r.expect(')', "the end of QRESYNC's sequence match data")
		q.SeqMatch = &SeqMatch{Seqs: seqs, UIDs: uids}
	}
	r.expect(')', "the end of QRESYNC's parameters")
	return q
}

// knownSet reads a sequence set that may not be "$".
func (r *Reader) knownSet(uid bool) imap.NumSet {
	if r.peek() == '$' {
		r.syntax("Expected a sequence set")
	}
	return r.seqSet(uid)
}

// create reads CREATE's mailbox and CREATE-SPECIAL-USE's USE parameter.
func (r *Reader) create() *Create {
	r.sp()
	c := &Create{Mailbox: r.mailbox()}
	if !r.maybe(' ') {
		return c
	}
	r.list(func() {
		if r.upperAtom("a CREATE parameter") != "USE" {
			r.syntax("Unknown CREATE parameter")
		}
		r.sp()
		r.list(func() {
			r.expect('\\', "a special-use attribute")
			c.SpecialUse = append(c.SpecialUse, imap.MailboxAttr("\\"+r.atom("a special-use attribute")))
		})
	})
	return c
}

// listArgs reads LIST's and LSUB's arguments.
func (r *Reader) listArgs(lsub bool) *List {
	l := &List{Lsub: lsub}
	r.sp()
	if !lsub && r.peek() == '(' {
		l.Extended = true
		r.list(func() {
			switch r.upperAtom("a LIST selection option") {
			case "SUBSCRIBED":
				l.Options.SelectSubscribed = true
			case "REMOTE":
				l.Options.SelectRemote = true
			case "RECURSIVEMATCH":
				l.Options.SelectRecursiveMatch = true
			case "SPECIAL-USE":
				l.Options.SelectSpecialUse = true
			default:
				r.syntax("Unknown LIST selection option")
			}
		})
		if l.Options.SelectRecursiveMatch && !l.Options.SelectSubscribed && !l.Options.SelectSpecialUse {
			r.syntax("RECURSIVEMATCH needs another selection option")
		}
		r.sp()
	}
	l.Ref = r.listMailbox()
	r.sp()
	if !lsub && r.peek() == '(' {
		l.Extended = true
		r.list(func() { l.Patterns = append(l.Patterns, r.listMailbox()) })
	} else {
		l.Patterns = []string{r.listMailbox()}
	}
	if lsub || !r.maybe(' ') {
		return l
	}
	if r.upperAtom("RETURN") != "RETURN" {
		r.syntax("Expected RETURN")
	}
	l.Extended = true
	r.sp()
	r.list(func() {
		switch r.upperAtom("a LIST return option") {
		case "SUBSCRIBED":
			l.Options.ReturnSubscribed = true
		case "CHILDREN":
			l.Options.ReturnChildren = true
		case "SPECIAL-USE":
			l.Options.ReturnSpecialUse = true
		case "STATUS":
			r.sp()
			l.Options.ReturnStatus = &imap.StatusOptions{}
			l.StatusMailboxID = r.statusItems(l.Options.ReturnStatus)
		default:
			r.syntax("Unknown LIST return option")
		}
	})
	return l
}

// status reads STATUS's mailbox and items.
func (r *Reader) status() *Status {
	r.sp()
	s := &Status{Mailbox: r.mailbox()}
	r.sp()
	s.MailboxID = r.statusItems(&s.Items)
	return s
}

// statusItems reads a list of STATUS items, at least one, and reports
// MAILBOXID, which go-imap's options have no field for.
func (r *Reader) statusItems(o *imap.StatusOptions) (mailboxID bool) {
	n := 0
	r.list(func() {
		n++
		switch r.upperAtom("a STATUS item") {
		case "MESSAGES":
			o.NumMessages = true
		case "RECENT":
			o.NumRecent = true
		case "UIDNEXT":
			o.UIDNext = true
		case "UIDVALIDITY":
			o.UIDValidity = true
		case "UNSEEN":
			o.NumUnseen = true
		case "DELETED":
			o.NumDeleted = true
		case "SIZE":
			o.Size = true
		case "APPENDLIMIT":
			o.AppendLimit = true
		case "DELETED-STORAGE":
			o.DeletedStorage = true
		case "HIGHESTMODSEQ":
			o.HighestModSeq = true
		case "MAILBOXID":
			mailboxID = true
		default:
			r.syntax("Unknown STATUS item")
		}
	})
	if n == 0 {
		r.syntax("Expected a STATUS item")
	}
	return mailboxID
}

// appendMessage reads one message of APPEND after its space: flags,
// date, and the literal's header (or CATENATE's opening). The message's
// data is left for the caller; multi allows further messages.
func (r *Reader) appendMessage(multi bool) *AppendMessage {
	r.appendMsgs++
	if r.appendMsgs > r.Limits.MaxAppendMessages {
		r.fail(imap.ResponseCodeLimit, "Too many messages in one APPEND")
	}
	m := &AppendMessage{}
	if r.peek() == '(' {
		m.Flags = r.flagList()
		r.sp()
	}
	if r.peek() == '"' {
		m.Date = r.dateTime()
		r.sp()
	}
	utf8 := false
	switch r.peek() {
	case '{', '~':
	default:
		switch r.upperAtom("a message literal") {
		case "CATENATE":
			r.sp()
			r.expect('(', "CATENATE's parts")
			m.Catenate = true
			r.catSize, r.catParts = 0, 0
			first := true
			r.pending = func() any { return r.catenatePart(&first, multi) }
			return m
		case "UTF8":
			// RFC 6855 section 4: UTF8 (~{n}...).
			r.sp()
			r.expect('(', "UTF8's literal")
			utf8 = true
			if r.peek() != '~' {
				r.syntax("Expected a literal8")
			}
		default:
			r.syntax("Expected a message literal")
		}
	}
	m.Binary = r.maybe('~')
	m.Size = r.literalHeader(litMessage)
	r.body = &io.LimitedReader{R: r.br, N: m.Size}
	m.Body = literalData{r, r.body}
	r.pending = func() any {
		if utf8 {
			r.expect(')', "the end of UTF8's literal")
		}
		return r.afterMessage(multi)
	}
	return m
}

// afterMessage reads what follows a message: the end of the command, or
// MULTIAPPEND's next message.
func (r *Reader) afterMessage(multi bool) any {
	if r.atEOL() {
		r.eol()
		r.pending = nil
		return nil
	}
	if !multi {
		r.syntax("Expected the end of the command")
	}
	r.sp()
	return r.appendMessage(multi)
}

// catenatePart reads one part of CATENATE, or its end (nil).
func (r *Reader) catenatePart(first *bool, multi bool) any {
	if !*first && r.maybe(')') {
		r.pending = func() any { return r.afterMessage(multi) }
		return nil
	}
	if !*first {
		r.sp()
	}
	*first = false
	r.catParts++
	if r.catParts > r.Limits.MaxCatenateParts {
		r.fail(imap.ResponseCodeLimit, "Too many CATENATE parts")
	}
	p := &CatenatePart{}
	switch r.upperAtom("a CATENATE part") {
	case "URL":
		r.sp()
		p.URL = r.astring("a URL")
		return p
	case "TEXT":
		r.sp()
		p.Binary = r.maybe('~')
		p.Size = r.literalHeader(litPart)
		r.body = &io.LimitedReader{R: r.br, N: p.Size}
		p.Body = literalData{r, r.body}
		return p
	}
	r.syntax("Unknown CATENATE part")
	return nil
}

// CountURLPart counts size bytes of a CATENATE URL part against the
// message's limit, before they are read: over it, it returns the NO
// [TOOBIG] to answer (the command's rest is then read as usual).
func (r *Reader) CountURLPart(size int64) error {
	if size > r.Limits.AppendLimit-r.catSize {
		return &Error{Tag: r.tag, Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too large"}
	}
	if size > r.Limits.MaxAppendTotal-r.appendTotal {
		return &Error{Tag: r.tag, Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Messages of one APPEND too large together"}
	}
	r.catSize += size
	r.appendTotal += size
	return nil
}

// drainBody reads what the caller left of a message's data.
func (r *Reader) drainBody() {
	if r.body == nil {
		return
	}
	if r.body.N > 0 {
		if _, err := io.Copy(io.Discard, literalData{r, r.body}); err != nil {
			panic(ioError{err})
		}
	}
	if r.body.N > 0 {
		panic(ioError{io.ErrUnexpectedEOF})
	}
	r.body = nil
}

// NextMessage reads past the current message of an APPEND and returns
// the next one (MULTIAPPEND), or nil at the end of the command. For a
// CATENATE message, the parts are read with NextPart first.
func (r *Reader) NextMessage() (msg *AppendMessage, err error) {
	for {
		if err := r.next(); err != nil {
			return nil, err
		}
		switch m := r.last.(type) {
		case *AppendMessage:
			return m, nil
		case nil:
			if r.pending == nil {
				return nil, nil
			}
		}
		// A CATENATE part the caller skipped: go on.
	}
}

// NextPart returns the next part of a CATENATE message, or nil after its
// last.
func (r *Reader) NextPart() (part *CatenatePart, err error) {
	if err := r.next(); err != nil {
		return nil, err
	}
	p, _ := r.last.(*CatenatePart)
	return p, nil
}

// next drains the current body and reads the next element of an APPEND.
func (r *Reader) next() (err error) {
	r.last = nil
	if r.refused {
		return ErrRefused
	}
	defer r.recover(&err)
	r.drainBody()
	if r.pending == nil {
		return nil
	}
	r.last = r.pending()
	return nil
}

// fetch reads FETCH's arguments.
func (r *Reader) fetch(uid bool) *Fetch {
	r.sp()
	f := &Fetch{Set: r.seqSet(uid)}
	f.Options.UID = uid
	r.sp()
	if r.peek() == '(' {
		n := 0
		r.list(func() { n++; r.fetchAtt(f) })
		if n == 0 {
			r.syntax("Expected a FETCH item")
		}
	} else {
		switch name := r.fetchName(); name {
		case "ALL", "FAST", "FULL":
			f.Options.Flags, f.Options.InternalDate, f.Options.RFC822Size = true, true, true
			if name != "FAST" {
				f.Options.Envelope = true
			}
			if name == "FULL" {
				f.Options.BodyStructure = &imap.FetchItemBodyStructure{}
			}
		default:
			r.fetchItem(f, name)
		}
	}
	if r.maybe(' ') {
		r.list(func() {
			switch r.upperAtom("a FETCH modifier") {
			case "CHANGEDSINCE":
				r.sp()
				f.Options.ChangedSince = r.number64()
				f.HasChangedSince = true
			case "VANISHED":
				f.Vanished = true
			default:
				r.syntax("Unknown FETCH modifier")
			}
		})
		if f.Vanished && (!uid || !f.HasChangedSince) {
			r.syntax("VANISHED needs UID FETCH and CHANGEDSINCE")
		}
	}
	return f
}

// fetchName reads a FETCH item's name up to its section or the next
// separator.
func (r *Reader) fetchName() string {
	return asciiUpper(r.readWhile(func(c byte) bool { return isAtomChar(c) && c != '[' && c != '<' }, "a FETCH item"))
}

// fetchAtt reads one FETCH item.
func (r *Reader) fetchAtt(f *Fetch) { r.fetchItem(f, r.fetchName()) }

func (r *Reader) fetchItem(f *Fetch, name string) {
	o := &f.Options
	switch name {
	case "ENVELOPE":
		o.Envelope = true
	case "FLAGS":
		o.Flags = true
	case "INTERNALDATE":
		o.InternalDate = true
	case "RFC822.SIZE":
		o.RFC822Size = true
	case "RFC822":
		f.RFC822 = true
	case "RFC822.HEADER":
		f.RFC822Header = true
	case "RFC822.TEXT":
		f.RFC822Text = true
	case "UID":
		o.UID = true
		f.UIDItem = true
	case "BODYSTRUCTURE":
		o.BodyStructure = &imap.FetchItemBodyStructure{Extended: true}
	case "BODY", "BODY.PEEK":
		if r.peek() != '[' {
			if name == "BODY.PEEK" {
				r.syntax("Expected a section")
			}
			if o.BodyStructure == nil {
				o.BodyStructure = &imap.FetchItemBodyStructure{}
			}
			return
		}
		bs := r.section()
		bs.Peek = name == "BODY.PEEK"
		bs.Partial = r.partial()
		o.BodySection = append(o.BodySection, bs)
	case "BINARY", "BINARY.PEEK":
		part := r.binarySection()
		o.BinarySection = append(o.BinarySection, &imap.FetchItemBinarySection{
			Part: part, Peek: name == "BINARY.PEEK", Partial: r.partial()})
	case "BINARY.SIZE":
		o.BinarySectionSize = append(o.BinarySectionSize, &imap.FetchItemBinarySectionSize{Part: r.binarySection()})
	case "MODSEQ":
		o.ModSeq = true
	case "SAVEDATE":
		f.SaveDate = true
	case "EMAILID":
		f.EmailID = true
	case "THREADID":
		f.ThreadID = true
	case "PREVIEW", "SNIPPET":
		// RFC 8970's PREVIEW, and Dovecot's older SNIPPET and PREVIEW
		// with the FUZZY algorithm.
		f.Preview = true
		f.Snippet = f.Snippet || name == "SNIPPET"
		if r.peek() == ' ' {
			// Modifiers, "(LAZY)", only when a list follows.
			if b, err := r.br.Peek(2); err == nil && b[1] == '(' {
				r.take()
				r.list(func() {
					switch r.upperAtom("a PREVIEW modifier") {
					case "LAZY":
						f.PreviewLazy = true
					case "LAZY=FUZZY":
						f.PreviewLazy, f.PreviewFuzzy = true, true
					case "FUZZY":
						f.PreviewFuzzy = true
					default:
						r.syntax("Unknown PREVIEW modifier")
					}
				})
			}
		}
	default:
		r.syntax("Unknown FETCH item")
	}
}

// section reads BODY's "[" section-spec "]".
func (r *Reader) section() *imap.FetchItemBodySection {
	r.expect('[', "a section")
	bs := &imap.FetchItemBodySection{}
	if r.maybe(']') {
		return bs
	}
	bs.Part = r.partNumbers(true)
	if len(bs.Part) == 0 || r.maybe('.') {
		name := asciiUpper(r.readWhile(func(c byte) bool { return isAtomChar(c) && c != '[' && c != '<' }, "a section"))
		switch name {
		case "HEADER":
			bs.Specifier = imap.PartSpecifierHeader
		case "TEXT":
			bs.Specifier = imap.PartSpecifierText
		case "MIME":
			if len(bs.Part) == 0 {
				r.syntax("MIME needs a part number")
			}
			bs.Specifier = imap.PartSpecifierMIME
		case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
			bs.Specifier = imap.PartSpecifierHeader
			r.sp()
			var fields []string
			n := 0
			r.list(func() { n++; fields = append(fields, r.astring("a header field name")) })
			if n == 0 {
				r.syntax("Expected a header field name")
			}
			if name == "HEADER.FIELDS" {
				bs.HeaderFields = fields
			} else {
				bs.HeaderFieldsNot = fields
			}
		default:
			r.syntax("Unknown section")
		}
	}
	r.expect(']', "the end of a section")
	return bs
}

// partNumbers reads "1.2.3" up to a "." that is not followed by a
// digit (which it leaves read when dot is true and returns); none when
// the section starts with a name.
func (r *Reader) partNumbers(dot bool) []int {
	var part []int
	for {
		c := r.peek()
		if c < '1' || c > '9' {
			if len(part) > 0 {
				r.syntax("Expected a part number")
			}
			return part
		}
		part = append(part, int(r.nzNumber()))
		if len(part) > 100 {
			r.fail(imap.ResponseCodeLimit, "Part number too deep")
		}
		if r.peek() != '.' {
			return part
		}
		b, err := r.br.Peek(2)
		if err != nil {
			panic(ioError{err})
		}
		if b[1] < '0' || b[1] > '9' {
			return part // the caller reads the "." before a name
		}
		r.take()
	}
}

// binarySection reads BINARY's "[" [part] "]".
func (r *Reader) binarySection() []int {
	r.expect('[', "a section")
	part := r.partNumbers(false)
	r.expect(']', "the end of a section")
	if part == nil {
		part = []int{}
	}
	return part
}

// partial reads "<offset.size>", if present.
func (r *Reader) partial() *imap.SectionPartial {
	if !r.maybe('<') {
		return nil
	}
	p := &imap.SectionPartial{Offset: int64(r.number())}
	r.expect('.', "a partial's size")
	p.Size = int64(r.nzNumber())
	r.expect('>', "the end of a partial")
	return p
}

// store reads STORE's arguments.
func (r *Reader) store(uid bool) *Store {
	r.sp()
	s := &Store{Set: r.seqSet(uid)}
	r.sp()
	if r.peek() == '(' {
		r.list(func() {
			if r.upperAtom("a STORE modifier") != "UNCHANGEDSINCE" {
				r.syntax("Unknown STORE modifier")
			}
			r.sp()
			s.UnchangedSince = r.number64()
			s.HasUnchangedSince = true
		})
		r.sp()
	}
	switch {
	case r.maybe('+'):
		s.Flags.Op = imap.StoreFlagsAdd
	case r.maybe('-'):
		s.Flags.Op = imap.StoreFlagsDel
	}
	switch r.upperAtom("FLAGS") {
	case "FLAGS":
	case "FLAGS.SILENT":
		s.Flags.Silent = true
	default:
		r.syntax("Expected FLAGS")
	}
	r.sp()
	if r.peek() == '(' {
		s.Flags.Flags = r.flagList()
		return s
	}
	s.Flags.Flags = []imap.Flag{r.flag()}
	for r.maybe(' ') {
		if len(s.Flags.Flags) >= r.Limits.MaxSetRanges {
			r.fail(imap.ResponseCodeLimit, "Too many flags")
		}
		s.Flags.Flags = append(s.Flags.Flags, r.flag())
	}
	return s
}

// setQuota reads SETQUOTA's root and limits.
func (r *Reader) setQuota() *SetQuota {
	r.sp()
	q := &SetQuota{Root: r.astring("a quota root")}
	r.sp()
	r.list(func() {
		res := r.upperAtom("a quota resource")
		r.sp()
		q.Limits = append(q.Limits, QuotaLimit{Resource: res, Limit: r.number64()})
	})
	return q
}

// charsetName reads a charset: an astring.
func (r *Reader) charsetName() string { return r.astring("a charset") }
