package imap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	netmail "net/mail"
	"strings"
	"time"
	"unsafe"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// sortFields are what SORT and THREAD compare of a message's header,
// derived once and kept in the folder's cache (maildir's CachedFields),
// so that sorting or threading a large folder reads no message file
// after the first time.
type sortFields struct {
	hasDate   bool
	date      int64  // the Date field, unix seconds, when hasDate
	subject   string // the base subject (baseSubject)
	reply     bool   // the subject had a reply or forward marker
	from      string // addressKey of From, To and Cc, plain and DISPLAY
	fromName  string
	to        string
	toName    string
	cc        string
	messageID string
	parents   []string // References, or the first In-Reply-To
}

// sortFieldsVersion is the encoding's version; changing what is derived
// (baseSubject, addressKey) needs a new one, so that old records are
// computed again.
const sortFieldsVersion = 1

// maxSortParents bounds the References kept per message.
const maxSortParents = 256

// computeSortFields reads a message's header from r and encodes its
// sortFields.
func computeSortFields(r io.Reader) ([]byte, error) {
	h, err := textproto.ReadHeader(bufio.NewReaderSize(io.LimitReader(r, maxSearchHeader), 8<<10))
	if err != nil && h.Len() == 0 {
		return nil, err
	}
	return deriveSortFields(&mail.Header{Header: message.Header{Header: h}}).encode(), nil
}

// deriveSortFields computes a message's sortFields from its header.
func deriveSortFields(h *mail.Header) *sortFields {
	f := &sortFields{
		from:     addressKey(h.Get("From"), false),
		fromName: addressKey(h.Get("From"), true),
		to:       addressKey(h.Get("To"), false),
		toName:   addressKey(h.Get("To"), true),
		cc:       addressKey(h.Get("Cc"), false),
	}
	f.subject, f.reply = baseSubject(h.Get("Subject"))
	if v := strings.TrimSpace(h.Get("Date")); v != "" {
		if t, err := netmail.ParseDate(v); err == nil {
			f.hasDate, f.date = true, t.Unix()
		}
	}
	if v, err := h.MessageID(); err == nil {
		f.messageID = v
	}
	f.parents, _ = h.MsgIDList("References")
	if len(f.parents) == 0 {
		if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) > 0 {
			f.parents = irt[:1]
		}
	}
	if len(f.parents) > maxSortParents {
		f.parents = f.parents[len(f.parents)-maxSortParents:]
	}
	return f
}

func (f *sortFields) encode() []byte {
	b := make([]byte, 0, 128)
	var fl byte
	if f.hasDate {
		fl |= 1
	}
	if f.reply {
		fl |= 2
	}
	b = append(b, fl)
	if f.hasDate {
		b = binary.AppendVarint(b, f.date)
	}
	for _, s := range []string{f.subject, f.from, f.fromName, f.to, f.toName, f.cc, f.messageID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(f.parents)))
	for _, s := range f.parents {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

var errSortFields = errors.New("imap: damaged sort fields")

// decodeSortFields decodes what encode wrote. The strings share one
// copy of b.
func decodeSortFields(b []byte) (*sortFields, error) {
	f := &sortFields{}
	if len(b) == 0 || b[0] > 3 {
		return nil, errSortFields
	}
	f.hasDate, f.reply = b[0]&1 != 0, b[0]&2 != 0
	all := string(b)
	p := 1
	if f.hasDate {
		v, n := binary.Varint(b[p:])
		if n <= 0 {
			return nil, errSortFields
		}
		f.date, p = v, p+n
	}
	str := func() (string, bool) {
		l, n := binary.Uvarint(b[p:])
		if n <= 0 || l > uint64(len(b)-p-n) {
			return "", false
		}
		p += n + int(l)
		return all[p-int(l) : p], true
	}
	for _, dst := range []*string{&f.subject, &f.from, &f.fromName, &f.to, &f.toName, &f.cc, &f.messageID} {
		s, ok := str()
		if !ok {
			return nil, errSortFields
		}
		*dst = s
	}
	l, n := binary.Uvarint(b[p:])
	if n <= 0 || l > maxSortParents || l > uint64(len(b)) {
		return nil, errSortFields
	}
	p += n
	if l > 0 {
		f.parents = make([]string, 0, l)
	}
	for range l {
		s, ok := str()
		if !ok {
			return nil, errSortFields
		}
		f.parents = append(f.parents, s)
	}
	if p != len(b) {
		return nil, errSortFields
	}
	return f, nil
}

// loadSortFields gives every message of found its sortFields: those the
// folder's shared state holds decoded (maildir's DecodedFields), else
// from the folder's cache (one read of the cache file for all), else
// from its header, stored for the next time. A message whose fields
// cannot be had keeps nil, and its header is read as for SEARCH.
func (s *session) loadSortFields(found []*matchContext) {
	uids := make([]uint32, len(found))
	for i, mc := range found {
		uids[i] = mc.m.UID
	}
	vals, err := s.sel.folder.DecodedFields(s.ctx, uids, sortFieldsVersion, computeSortFields, decodeHeldSortFields)
	if err != nil {
		return
	}
	for i, v := range vals {
		if f, ok := v.(*sortFields); ok {
			found[i].fields = f
		}
	}
}

// decodeHeldSortFields decodes cached sort fields for the folder's
// shared state, with the bytes they hold: the struct, the strings' one
// copy of data and the References' slice.
func decodeHeldSortFields(data []byte) (any, int, error) {
	f, err := decodeSortFields(data)
	if err != nil {
		return nil, 0, err
	}
	return f, int(unsafe.Sizeof(*f)) + len(data) + len(f.parents)*int(unsafe.Sizeof("")), nil
}

// sortFieldsOf returns the message's sortFields: the cached ones, or
// those of its header read now (nil if it cannot be read).
func (mc *matchContext) sortFieldsOf() *sortFields {
	if mc.fields == nil && mc.loadHeader() {
		mc.fields = deriveSortFields(mc.header)
	}
	return mc.fields
}

// sentDateOf is the message's Date field, or INTERNALDATE without one
// (RFC 5256 section 2.2).
func sentDateOf(mc *matchContext) time.Time {
	if f := mc.sortFieldsOf(); f != nil && f.hasDate {
		return time.Unix(f.date, 0)
	}
	return mc.m.InternalDate
}
