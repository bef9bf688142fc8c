package imap

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/maildir"
)

// snapshotThreshold is the number of messages above which a command reads
// the whole index once rather than looking messages up one by one.
const snapshotThreshold = 32

// Fetch serves FETCH and UID FETCH. Flags, sizes, dates and UIDs come
// from maildir's index; a message file is opened only for items that need
// its content.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	refs := sel.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	markSeen := false
	if !sel.readOnly {
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
			if _, err := s.storeFlags(unseen, maildir.FlagsAdd, []string{maildir.FlagSeen}); err != nil {
				return err
			}
			if !options.Flags {
				// RFC 3501 6.4.5: the changed flags go with the data.
				opts := *options
				opts.Flags = true
				options = &opts
			}
		}
	}
	return s.fetchRefs(w, refs, options)
}

// messages returns a lookup of refs' index entries, from one Snapshot for
// many messages or one lookup each for few.
func (s *session) messages(refs []ref) (func(uid uint32) *maildir.Message, error) {
	f := s.sel.folder
	if len(refs) > snapshotThreshold {
		snap, err := f.Snapshot(s.ctx)
		if err != nil {
			return nil, mapError(err)
		}
		return func(uid uint32) *maildir.Message {
			if i := snap.Find(uid); i >= 0 {
				return &snap.Messages[i]
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
		byUID[r.uid] = &m
	}
	return func(uid uint32) *maildir.Message { return byUID[uid] }, nil
}

func needsContent(o *imap.FetchOptions) bool {
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 ||
		len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

func (s *session) fetchRefs(w *imapserver.FetchWriter, refs []ref, options *imap.FetchOptions) (err error) {
	s.nc.cork()
	defer func() {
		if uerr := s.nc.uncork(); err == nil {
			err = uerr
		}
	}()
	msgs, err := s.messages(refs)
	if err != nil {
		return err
	}
	content := needsContent(options)
	for _, r := range refs {
		m := msgs(r.uid)
		if m == nil {
			continue // expunged by another process; its EXPUNGE follows
		}
		rw := w.CreateMessage(r.seq)
		if options.UID {
			rw.WriteUID(imap.UID(r.uid))
		}
		if options.Flags {
			rw.WriteFlags(imapFlags(m))
		}
		if options.InternalDate {
			rw.WriteInternalDate(m.InternalDate)
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(m.VSize)
		}
		if content {
			if err := s.fetchContent(rw, r.uid, options); err != nil {
				rw.Close()
				return err
			}
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// fetchContent writes the items that need the message file.
func (s *session) fetchContent(rw *imapserver.FetchResponseWriter, uid uint32, options *imap.FetchOptions) error {
	f, m, err := s.sel.folder.Open(s.ctx, uid)
	if err != nil {
		// Expunged between the index lookup and now: nothing to send.
		return nil
	}
	defer f.Close()
	src, size, release, err := messageSource(&s.srv.msgBufs, f, &m)
	if err != nil {
		return err
	}
	defer release()
	fresh := true
	rewind := func() io.Reader {
		if !fresh {
			src.Seek(0, io.SeekStart)
		}
		fresh = false
		return src
	}
	if options.Envelope {
		h, err := textproto.ReadHeader(bufio.NewReader(rewind()))
		if err == nil {
			rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
		} else {
			rw.WriteEnvelope(&imap.Envelope{})
		}
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(rewind()))
	}
	for _, bs := range options.BodySection {
		if isWholeMessage(bs) {
			wc := rw.WriteBodySection(bs, size)
			if _, err := io.CopyN(wc, rewind(), size); err != nil {
				// The literal is cut short: the client cannot resync.
				s.srv.log.Error("imap: reading message", "user", s.user.Address, "uid", uid, "err", err)
				s.nc.Close()
				return err
			}
			if err := wc.Close(); err != nil {
				return err
			}
			continue
		}
		if err := writeLiteral(imapserver.ExtractBodySection(rewind(), bs), func(n int64) io.WriteCloser {
			return rw.WriteBodySection(bs, n)
		}); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		rewind()
		b, err := binarySection(src, bs.Part, bs.Partial)
		if err != nil {
			return err
		}
		if err := writeLiteral(b, func(n int64) io.WriteCloser {
			return rw.WriteBinarySection(bs, n)
		}); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySectionSize {
		rewind()
		b, err := binarySection(src, bs.Part, nil)
		if err != nil {
			return err
		}
		rw.WriteBinarySectionSize(bs, uint32(len(b)))
	}
	return nil
}

func writeLiteral(b []byte, open func(int64) io.WriteCloser) error {
	wc := open(int64(len(b)))
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
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
