package imap

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/mimetree"
	"github.com/mailagent/mailagent/maildir"
)

// snapshotThreshold is the number of messages above which a command reads
// the whole index once rather than looking messages up one by one.
const snapshotThreshold = 32

// fetchItems is what a FETCH asks for: go-imap's options and the
// IMAP4rev1 items answered under their own names.
type fetchItems struct {
	opts                             imap.FetchOptions
	rfc822, rfc822Header, rfc822Text bool
	// changedSince holds CONDSTORE's CHANGEDSINCE (RFC 7162 section
	// 3.1.4.1) when hasChangedSince: only messages changed after it.
	changedSince    uint64
	hasChangedSince bool
	// OBJECTID (RFC 8474): EMAILID from the index; THREADID is NIL, as
	// the server keeps no threads.
	emailID, threadID bool
	// saveDate is SAVEDATE (RFC 8514): when the message entered the
	// folder, from maildir's index; NIL when the index does not know.
	saveDate bool
	// preview is PREVIEW (RFC 8970), or SNIPPET and PREVIEW (FUZZY),
	// Dovecot's older spellings (preview.go).
	preview previewItem
}

// errNotSupported answers FETCH items of extensions not offered.
var errNotSupported = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "FETCH item not supported"}

// cmdFetch serves FETCH and UID FETCH. Flags, sizes, dates and UIDs
// come from maildir's index; a message file is opened only for items
// that need its content.
func (c *conn) cmdFetch(cmd *imapwire.Command) (okStatus, error) {
	a := cmd.Args.(*imapwire.Fetch)
	if a.Vanished {
		if !c.qresync {
			return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "ENABLE QRESYNC first"}
		}
		// RFC 7162 section 3.2.6: the messages of the set expunged since
		// CHANGEDSINCE, before the changed ones.
		set, _ := a.Set.(imap.UIDSet)
		if err := c.sess.vanishedEarlier(c.w, a.Options.ChangedSince, set, 0); err != nil {
			return okStatus{}, err
		}
	}
	items := &fetchItems{opts: a.Options, rfc822: a.RFC822, rfc822Header: a.RFC822Header, rfc822Text: a.RFC822Text,
		emailID: a.EmailID, threadID: a.ThreadID, saveDate: a.SaveDate,
		changedSince: a.Options.ChangedSince, hasChangedSince: a.HasChangedSince,
		preview: previewItemOf(a)}
	if cmd.UID {
		items.opts.UID = true
	}
	if a.Options.ModSeq || a.HasChangedSince {
		c.enableCondStore() // a CONDSTORE-enabling command (RFC 7162 section 3.1)
	}
	// Once CONDSTORE is on, every FETCH response carries UID and MODSEQ
	// (RFC 7162 section 3.1).
	items.opts.ModSeq = c.condstore
	items.opts.UID = items.opts.UID || c.condstore
	if c.uidOnly {
		// RFC 9586 section 3.3: UIDFETCH names the UID; the item only
		// when asked for.
		items.opts.UID = a.UIDItem
	}
	return okStatus{}, c.sess.fetch(c.w, a.Set, items)
}

func (s *session) fetch(w *imapwire.Writer, set imap.NumSet, items *fetchItems) error {
	sel := s.sel
	var refs []ref
	if items.hasChangedSince {
		// From the index's changes, whose cost grows with their number
		// rather than the folder's size.
		changed, err := sel.folder.ChangedSince(s.ctx, items.changedSince)
		if err != nil {
			return mapError(err)
		}
		uids := make([]uint32, len(changed))
		for i := range changed {
			uids[i] = changed[i].UID
		}
		refs = sel.resolveAmong(set, uids)
	} else {
		refs = sel.resolve(set)
	}
	if len(refs) == 0 {
		return nil
	}
	options := &items.opts
	markSeen := false
	if !sel.readOnly {
		markSeen = items.rfc822 || items.rfc822Text
		for _, bs := range options.BodySection {
			markSeen = markSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			markSeen = markSeen || !bs.Peek
		}
	}
	if markSeen {
		msgs, err := s.messages(refs)
		if err != nil {
			return err
		}
		var unseen []uint32
		for _, r := range refs {
			if m := msgs(r.uid); m != nil && !m.HasFlag(maildir.FlagSeen) {
				unseen = append(unseen, r.uid)
			}
		}
		if len(unseen) > 0 {
			if _, _, err := s.storeFlags(unseen, maildir.FlagsAdd, []string{maildir.FlagSeen}, 0, false); err != nil {
				return err
			}
			// RFC 3501 6.4.5: the changed flags go with the data.
			options.Flags = true
		}
	}
	if options.Flags {
		// Before the flags are read: a change another session makes
		// after this read stays pending and is sent later.
		sel.reported(refs)
	}
	if err := s.fetchRefs(w, refs, items); err != nil {
		return err
	}
	return nil
}

// messages returns a lookup of refs' index entries, from one Snapshot for
// many messages or one lookup each for few, \Recent as this session
// reports it.
func (s *session) messages(refs []ref) (func(uid uint32) *maildir.Message, error) {
	f := s.sel.folder
	if len(refs) > snapshotThreshold {
		snap, err := f.Snapshot(s.ctx)
		if err != nil {
			return nil, mapError(err)
		}
		return func(uid uint32) *maildir.Message {
			if i := snap.Find(uid); i >= 0 {
				m := &snap.Messages[i]
				m.Recent = s.sel.isRecent(uid)
				return m
			}
			return nil
		}, nil
	}
	byUID := make(map[uint32]*maildir.Message, len(refs))
	for _, r := range refs {
		m, err := f.Message(s.ctx, r.uid)
		if err != nil {
			continue // expunged meanwhile
		}
		m.Recent = s.sel.isRecent(r.uid)
		byUID[r.uid] = &m
	}
	return func(uid uint32) *maildir.Message { return byUID[uid] }, nil
}

func needsContent(it *fetchItems) bool {
	o := &it.opts
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 ||
		len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 ||
		it.rfc822 || it.rfc822Header || it.rfc822Text
}

// fetchRefs writes a FETCH response for each of refs.
func (s *session) fetchRefs(w *imapwire.Writer, refs []ref, items *fetchItems) error {
	msgs, err := s.messages(refs)
	if err != nil {
		return err
	}
	options := &items.opts
	content := needsContent(items)
	open := content || items.preview.want
	for _, r := range refs {
		m := msgs(r.uid)
		if m == nil {
			continue // expunged by another process; its EXPUNGE follows
		}
		var mc *msgContent
		if open {
			// Opened and its BINARY parts decoded before the response
			// begins: an error is then the command's answer.
			if mc, err = s.openContent(r.uid, items); err != nil {
				return err
			}
		}
		if options.Flags {
			s.sel.announceKeywords(w, m.Flags)
		}
		s.nc.fetchStart(w, r.seq, r.uid)
		sep := false
		item := func(name string) {
			if sep {
				w.SP()
			}
			sep = true
			w.Atom(name)
		}
		if options.UID {
			item("UID ")
			w.Number(r.uid)
		}
		if options.Flags {
			item("FLAGS ")
			w.Flags(imapFlags(m, s.nc.rev2))
		}
		if options.InternalDate {
			item("INTERNALDATE ")
			w.DateTime(m.InternalDate)
		}
		if options.RFC822Size {
			item("RFC822.SIZE ")
			w.Number64(uint64(m.VSize))
		}
		if options.ModSeq {
			item("MODSEQ (")
			w.Number64(m.ModSeq)
			w.Atom(")")
		}
		if items.emailID && m.EmailID != "" {
			item("EMAILID (" + m.EmailID + ")")
		}
		if items.threadID {
			item("THREADID NIL")
		}
		if items.saveDate {
			if m.SaveDate == 0 {
				item("SAVEDATE NIL")
			} else {
				item("SAVEDATE ")
				w.DateTime(time.Unix(0, m.SaveDate))
			}
		}
		if items.preview.want {
			item("")
			items.preview.write(w, mc)
		}
		if content {
			if sep {
				w.SP()
			}
			err := s.fetchContent(w, r.uid, mc, items)
			if err != nil {
				mc.release()
				return err
			}
		}
		if open {
			mc.release()
		}
		w.Atom(")")
		w.End()
	}
	return nil
}

// msgContent is a message's content for FETCH, with its BINARY items
// decoded.
type msgContent struct {
	src      io.ReadSeeker
	size     int64
	release  func()
	tree     *mimetree.Part // MIME structure, when an item needs it
	binary   [][]byte
	binSizes []int
	preview  string // PREVIEW's text, when hasPreview
	// hasPreview is false for a lazy PREVIEW not yet made.
	hasPreview bool
}

// needsStructure reports items served from the message's MIME structure.
func needsStructure(it *fetchItems) bool {
	o := &it.opts
	return o.BodyStructure != nil || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 ||
		it.rfc822Header || it.rfc822Text ||
		slices.ContainsFunc(o.BodySection, func(bs *imap.FetchItemBodySection) bool { return !isWholeMessage(bs) })
}

// openContent opens a message for the items that need its content. A
// message expunged meanwhile reads as empty: its EXPUNGE follows.
func (s *session) openContent(uid uint32, items *fetchItems) (*msgContent, error) {
	mc := &msgContent{src: bytes.NewReader(nil), release: func() {}}
	f, m, err := s.sel.folder.Open(s.ctx, uid)
	if err == nil && !needsContent(items) {
		// PREVIEW alone: the message is read only to make a preview
		// not cached yet.
		release := func() {}
		mc.release = func() { release(); f.Close() }
		read := func() (io.ReadSeeker, error) {
			var err error
			mc.src, mc.size, release, err = messageSource(&s.srv.msgBufs, f, &m)
			return mc.src, err
		}
		if mc.preview, mc.hasPreview, err = s.messagePreview(uid, f, read, items.preview.lazy); err != nil {
			mc.release()
			return nil, err
		}
		return mc, nil
	}
	if err == nil {
		var release func()
		if mc.src, mc.size, release, err = messageSource(&s.srv.msgBufs, f, &m); err != nil {
			f.Close()
			return nil, err
		}
		// A large message is served from its file: it stays open until
		// the response is written.
		mc.release = func() { release(); f.Close() }
		if needsStructure(items) {
			if mc.tree, err = s.structure(uid, f, mc.src); err != nil {
				mc.release()
				s.srv.log.Error("imap: reading message structure", "session", s.nc.id, "user", s.user.Address, "uid", uid, "err", err)
				return nil, err
			}
		}
	}
	if err == nil && items.preview.want {
		src := mc.src
		read := func() (io.ReadSeeker, error) { return src, nil }
		if mc.preview, mc.hasPreview, err = s.messagePreview(uid, f, read, items.preview.lazy); err != nil {
			mc.release()
			return nil, err
		}
	}
	if mc.tree == nil && needsStructure(items) {
		mc.tree, _ = mimetree.Parse(bytes.NewReader(nil)) // expunged meanwhile
	}
	for _, bs := range items.opts.BinarySection {
		b, err := binarySection(mc.src, mc.tree, bs.Part, bs.Partial)
		if err != nil {
			mc.release()
			return nil, err
		}
		mc.binary = append(mc.binary, b)
	}
	for _, bs := range items.opts.BinarySectionSize {
		b, err := binarySection(mc.src, mc.tree, bs.Part, nil)
		if err != nil {
			mc.release()
			return nil, err
		}
		mc.binSizes = append(mc.binSizes, len(b))
	}
	mc.src.Seek(0, io.SeekStart)
	return mc, nil
}

// fetchContent writes the items that need the message's content.
func (s *session) fetchContent(w *imapwire.Writer, uid uint32, mc *msgContent, items *fetchItems) error {
	options := &items.opts
	src, size := mc.src, mc.size
	fresh := true
	rewind := func() io.Reader {
		if !fresh {
			src.Seek(0, io.SeekStart)
		}
		fresh = false
		return src
	}
	sep := false
	item := func(name string) {
		if sep {
			w.SP()
		}
		sep = true
		w.Atom(name)
	}
	if options.Envelope {
		item("ENVELOPE ")
		h, err := textproto.ReadHeader(bufio.NewReader(rewind()))
		if err == nil {
			envelopeFromHeader(h).write(w)
		} else {
			(*envelope)(nil).write(w)
		}
	}
	if bs := options.BodyStructure; bs != nil {
		if bs.Extended {
			item("BODYSTRUCTURE ")
		} else {
			item("BODY ")
		}
		st, envs := bodyStructure(mc.tree)
		w.BodyStructure(st, bs.Extended, envs.write(w))
	}
	whole := func() error {
		w.LiteralHeader(size, false)
		if _, err := io.CopyN(w, rewind(), size); err != nil {
			// The literal is cut short: the client cannot resync.
			s.srv.log.Error("imap: reading message", "session", s.nc.id, "user", s.user.Address, "uid", uid, "err", err)
			s.nc.raw.Close()
			return err
		}
		return nil
	}
	if items.rfc822 {
		item("RFC822 ")
		if err := whole(); err != nil {
			return err
		}
	}
	section := func(bs *imap.FetchItemBodySection) error {
		fresh = false
		b, err := bodySection(src, mc.tree, bs)
		if err != nil {
			return err
		}
		w.Literal(b)
		return nil
	}
	if items.rfc822Header {
		item("RFC822.HEADER ")
		if err := section(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}); err != nil {
			return err
		}
	}
	if items.rfc822Text {
		item("RFC822.TEXT ")
		if err := section(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}); err != nil {
			return err
		}
	}
	for _, bs := range options.BodySection {
		item("")
		writeSectionName(w, bs)
		if isWholeMessage(bs) {
			if err := whole(); err != nil {
				return err
			}
			continue
		}
		if err := section(bs); err != nil {
			return err
		}
	}
	for i, bs := range options.BinarySection {
		item("BINARY[" + partString(bs.Part) + "]")
		if bs.Partial != nil {
			w.Atom("<" + strconv.FormatInt(bs.Partial.Offset, 10) + ">")
		}
		w.SP()
		w.LiteralHeader(int64(len(mc.binary[i])), true)
		w.Write(mc.binary[i])
	}
	for i, bs := range options.BinarySectionSize {
		item("BINARY.SIZE[" + partString(bs.Part) + "] ")
		w.Number(uint32(mc.binSizes[i]))
	}
	return nil
}

// writeSectionName writes BODY[section]<offset> and a space.
func writeSectionName(w *imapwire.Writer, bs *imap.FetchItemBodySection) {
	w.Atom("BODY[")
	w.Atom(partString(bs.Part))
	if bs.Specifier != imap.PartSpecifierNone {
		if len(bs.Part) > 0 {
			w.Atom(".")
		}
		w.Atom(string(bs.Specifier))
		fields, name := bs.HeaderFields, ".FIELDS"
		if len(bs.HeaderFieldsNot) > 0 {
			fields, name = bs.HeaderFieldsNot, ".FIELDS.NOT"
		}
		if len(fields) > 0 {
			w.Atom(name + " (")
			for i, f := range fields {
				if i > 0 {
					w.SP()
				}
				w.AString(f)
			}
			w.Atom(")")
		}
	}
	w.Atom("]")
	if bs.Partial != nil {
		w.Atom("<" + strconv.FormatInt(bs.Partial.Offset, 10) + ">")
	}
	w.SP()
}

// partString is a part number, "1.2.3".
func partString(part []int) string {
	b := make([]byte, 0, 2*len(part))
	for i, p := range part {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(b)
}

// isWholeMessage reports BODY[] without a part or range, which is
// streamed from the file.
func isWholeMessage(bs *imap.FetchItemBodySection) bool {
	return bs.Specifier == imap.PartSpecifierNone && len(bs.Part) == 0 && bs.Partial == nil &&
		len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0
}

// smallMessage is the size up to which a message is read into memory
// with a single read rather than served from its file.
const smallMessage = 256 << 10

// messageSource returns the message with CRLF line endings, as IMAP
// sends it, and its size. A small message is read at once: asking for
// one byte more than the index's size and getting exactly the size
// proves the file complete with one system call. A large one with CRLF
// endings is served from its file; anything else (LF endings, a file
// that no longer matches the index) is read and converted, so that a
// literal's announced size is always what follows. release returns the
// buffer.
func messageSource(pool *sync.Pool, f *os.File, m *maildir.Message) (src io.ReadSeeker, size int64, release func(), err error) {
	release = func() {}
	if m.Size == m.VSize && m.Size <= smallMessage {
		bp := pool.Get().(*[]byte)
		b := slices.Grow((*bp)[:0], int(m.Size)+1)[:m.Size+1]
		// On a regular file, one read returning less than asked has
		// reached the end.
		n, _ := f.Read(b)
		if int64(n) == m.Size {
			*bp = b
			return bytes.NewReader(b[:n]), int64(n), func() { pool.Put(bp) }, nil
		}
		pool.Put(bp)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, 0, release, err
		}
	} else if m.Size == m.VSize {
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, release, err
		}
		if fi.Size() == m.VSize {
			return f, fi.Size(), release, nil
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, release, err
	}
	b = toCRLF(b)
	return bytes.NewReader(b), int64(len(b)), release, nil
}

// toCRLF turns bare LF line endings into CRLF.
func toCRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
