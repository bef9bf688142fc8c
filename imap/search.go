package imap

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/mailagent/mailagent/maildir"
	"golang.org/x/text/encoding/htmlindex"
)

// charsetReader decodes text in the charsets of the WHATWG Encoding
// Standard (ISO-8859-*, Windows-125x, KOI8, GBK/GB18030, Big5,
// Shift_JIS, EUC-JP, ISO-2022-JP, EUC-KR, UTF-16) to UTF-8 for SEARCH.
// It is used here only, not installed as go-message's global
// CharsetReader, which would make BINARY[] sections come out converted.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	e, err := htmlindex.Get(label)
	if err != nil {
		return nil, err
	}
	return e.NewDecoder().Reader(r), nil
}

// maxSearchPart bounds how much of one body part SEARCH reads.
const maxSearchPart = 32 << 20

// Search serves SEARCH and UID SEARCH (with ESEARCH and SEARCHRES, which
// imapserver formats): every criterion of RFC 3501 and RFC 9051. Text is
// matched case-insensitively after decoding transfer encodings, RFC 2047
// words and the parts' charsets to UTF-8.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	refs := sel.resolve(imap.SeqSet{{Start: 1, Stop: 0}})
	var maxSeq, maxUID uint32
	if len(refs) > 0 {
		maxSeq, maxUID = refs[len(refs)-1].seq, refs[len(refs)-1].uid
	}
	c := sel.staticCriteria(criteria, maxSeq, maxUID)
	msgs, err := s.messages(refs)
	if err != nil {
		return nil, err
	}
	var (
		data   imap.SearchData
		seqSet imap.SeqSet
		uidSet imap.UIDSet
	)
	for _, r := range refs {
		m := msgs(r.uid)
		if m == nil {
			continue
		}
		mc := &matchContext{s: s, m: m, seq: r.seq}
		if !mc.match(c) {
			continue
		}
		uidSet.AddNum(imap.UID(r.uid))
		num := r.seq
		if kind == imapserver.NumKindUID {
			num = r.uid
		} else {
			seqSet.AddNum(r.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options.ReturnSave {
		sel.searchRes = uidSet
	}
	return &data, nil
}

// staticCriteria copies criteria with "*" and "$" resolved.
func (sel *selection) staticCriteria(c *imap.SearchCriteria, maxSeq, maxUID uint32) *imap.SearchCriteria {
	out := *c
	out.SeqNum = nil
	out.UID = nil
	for _, set := range c.SeqNum {
		out.SeqNum = append(out.SeqNum, staticSeqSet(set, maxSeq))
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			out.UID = append(out.UID, sel.searchRes)
			continue
		}
		out.UID = append(out.UID, staticUIDSet(set, maxUID))
	}
	out.Not = make([]imap.SearchCriteria, len(c.Not))
	for i := range c.Not {
		out.Not[i] = *sel.staticCriteria(&c.Not[i], maxSeq, maxUID)
	}
	out.Or = make([][2]imap.SearchCriteria, len(c.Or))
	for i := range c.Or {
		out.Or[i] = [2]imap.SearchCriteria{
			*sel.staticCriteria(&c.Or[i][0], maxSeq, maxUID),
			*sel.staticCriteria(&c.Or[i][1], maxSeq, maxUID),
		}
	}
	return &out
}

// matchContext is one message under test; its content is read once, on
// the first criterion that needs it.
type matchContext struct {
	s   *session
	m   *maildir.Message
	seq uint32

	loaded bool
	raw    []byte
	header *mail.Header
}

func (mc *matchContext) load() bool {
	if mc.loaded {
		return mc.raw != nil
	}
	mc.loaded = true
	f, m, err := mc.s.sel.folder.Open(mc.s.ctx, mc.m.UID)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return false
	}
	_ = m
	mc.raw = b
	e, err := message.Read(bytes.NewReader(b))
	if e == nil {
		mc.raw = nil
		return false
	}
	_ = err // unknown charsets and encodings still leave the raw text
	mc.header = &mail.Header{Header: e.Header}
	return true
}

func (mc *matchContext) match(c *imap.SearchCriteria) bool {
	m := mc.m
	for _, set := range c.SeqNum {
		if !set.Contains(mc.seq) {
			return false
		}
	}
	for _, set := range c.UID {
		if !set.Contains(imap.UID(m.UID)) {
			return false
		}
	}
	if !matchDate(m.InternalDate, c.Since, c.Before) {
		return false
	}
	for _, f := range c.Flag {
		if !hasFlag(m, f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(m, f) {
			return false
		}
	}
	if c.Larger != 0 && m.VSize <= c.Larger {
		return false
	}
	if c.Smaller != 0 && m.VSize >= c.Smaller {
		return false
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() || len(c.Body) > 0 || len(c.Text) > 0 {
		if !mc.load() {
			return false
		}
	}
	for _, h := range c.Header {
		if !matchFields(mc.header.FieldsByKey(h.Key), h.Value) {
			return false
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		t, err := mc.header.Date()
		if err != nil || !matchDate(t, c.SentSince, c.SentBefore) {
			return false
		}
	}
	for _, b := range c.Body {
		if !mc.matchText(b, false) {
			return false
		}
	}
	for _, t := range c.Text {
		if !mc.matchText(t, true) {
			return false
		}
	}
	for i := range c.Not {
		if mc.match(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !mc.match(&c.Or[i][0]) && !mc.match(&c.Or[i][1]) {
			return false
		}
	}
	return true
}

func hasFlag(m *maildir.Message, f imap.Flag) bool {
	if strings.EqualFold(string(f), `\Recent`) {
		return m.Recent
	}
	for _, have := range m.Flags {
		if strings.EqualFold(have, string(f)) {
			return true
		}
	}
	return false
}

// matchDate compares dates only, disregarding time and zone as RFC 3501
// section 6.4.4 requires.
func matchDate(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)) {
		return false
	}
	if !before.IsZero() && !d.Before(time.Date(before.Year(), before.Month(), before.Day(), 0, 0, 0, 0, time.UTC)) {
		return false
	}
	return true
}

func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(substr))
}

func matchFields(fields message.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	for fields.Next() {
		v, err := dec.DecodeHeader(fields.Value())
		if err != nil {
			v = fields.Value()
		}
		if containsFold(v, pattern) {
			return true
		}
	}
	return false
}

// matchText searches the decoded text parts, and with header the header
// fields of every part too.
func (mc *matchContext) matchText(pattern string, header bool) bool {
	e, _ := message.Read(bytes.NewReader(mc.raw))
	if e == nil {
		return containsFold(string(mc.raw), pattern)
	}
	return matchEntity(e, pattern, header, 0)
}

// maxSearchDepth bounds MIME nesting followed by SEARCH.
const maxSearchDepth = 20

func matchEntity(e *message.Entity, pattern string, header bool, depth int) bool {
	if header && matchFields(e.Header.Fields(), pattern) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		if depth >= maxSearchDepth {
			return false
		}
		for {
			p, err := mr.NextPart()
			if err != nil && !message.IsUnknownCharset(err) {
				return false
			}
			if matchEntity(p, pattern, header, depth+1) {
				return true
			}
		}
	}
	t, params, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	var body io.Reader = e.Body
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := charsetReader(cs, body); err == nil {
			body = r
		}
	}
	b, _ := io.ReadAll(io.LimitReader(body, maxSearchPart))
	return containsFold(string(b), pattern)
}
