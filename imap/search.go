package imap

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
	"golang.org/x/text/encoding/charmap"
)

// maxSearchPart bounds how much of one body part SEARCH reads.
const maxSearchPart = 32 << 20

// maxSearchNesting bounds how deeply NOT and OR keys nest in one SEARCH
// ("NOT NOT ... ALL", "OR a OR b OR c ..."). Deeper searches are
// answered BAD [LIMIT]; 64 levels leave room for any search a client
// composes from a user's terms.
const maxSearchNesting = 64

var errSearchTooDeep = &imap.Error{
	Type: imap.StatusResponseTypeBad,
	Code: imap.ResponseCodeLimit,
	Text: "SEARCH keys nested deeper than 64 levels",
}

// cmdSearch serves SEARCH and UID SEARCH (with ESEARCH and SEARCHRES):
// every criterion of RFC 3501 and RFC 9051. Strings in CHARSET are
// converted to UTF-8; text is matched after decoding transfer
// encodings, RFC 2047 words and the parts' charsets to UTF-8, under
// Unicode simple case folding.
func (c *conn) cmdSearch(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	sel := s.sel
	a := cmd.Args.(*imapwire.Search)
	if err := checkContextReturn(&a.Return, &a.Context); err != nil {
		return okStatus{}, err
	}
	withModSeq := usesModSeq(a.Criteria)
	if withModSeq {
		c.enableCondStore()
	}
	data, ends, err := s.searchCharset(cmd.UID, a.Charset, a.Criteria, &a.Return)
	if err != nil {
		if a.Return.ReturnSave {
			// RFC 5182 section 2.1: a failed SEARCH empties "$".
			sel.searchRes = imap.UIDSet{}
		}
		return okStatus{}, err
	}
	w := c.w
	if !a.ESearch && !c.rev2 {
		w.Untagged()
		w.Atom("SEARCH")
		if nums, ok := numList(data.All); ok {
			for _, n := range nums {
				w.SP()
				w.Number(n)
			}
		}
		if withModSeq && data.Count > 0 {
			w.Atom(" (MODSEQ ")
			w.Number64(data.ModSeq)
			w.Atom(")")
		}
		w.End()
		return okStatus{}, nil
	}
	o := a.Return
	if !a.ESearch {
		o.ReturnAll = true // IMAP4rev2's SEARCH is RETURN (ALL)
	}
	if o.ReturnSave && !o.ReturnMin && !o.ReturnMax && !o.ReturnAll && !o.ReturnCount {
		return okStatus{}, nil // SAVE alone: no ESEARCH (RFC 5182 section 2.4)
	}
	writeESearchStart(w, cmd)
	if o.ReturnMin && data.Min != 0 {
		w.Atom(" MIN ")
		w.Number(data.Min)
	}
	if o.ReturnMax && data.Max != 0 {
		w.Atom(" MAX ")
		w.Number(data.Max)
	}
	if o.ReturnAll && data.Count > 0 {
		w.Atom(" ALL ")
		w.NumSet(data.All)
	}
	if o.ReturnCount {
		w.Atom(" COUNT ")
		w.Number(data.Count)
	}
	if p := a.Context.Partial; p != nil {
		nums, _ := numList(data.All)
		writePartial(w, p, nums)
	}
	if withModSeq && data.Count > 0 && (o.ReturnAll || o.ReturnCount || o.ReturnMin || o.ReturnMax) {
		// With MIN or MAX alone, the highest modseq of the messages
		// returned (RFC 7162 section 3.1.5).
		mod := data.ModSeq
		if !o.ReturnAll && !o.ReturnCount {
			mod = 0
			if o.ReturnMin {
				mod = ends[0]
			}
			if o.ReturnMax {
				mod = max(mod, ends[1])
			}
		}
		w.Atom(" MODSEQ ")
		w.Number64(mod)
	}
	w.End()
	if a.Context.Update {
		s.addSearchContext(w, cmd, a.Criteria, data.All)
	}
	return okStatus{}, nil
}

// writeESearchStart begins an ESEARCH response to cmd (RFC 4731).
func writeESearchStart(w *imapwire.Writer, cmd *imapwire.Command) {
	w.Untagged()
	w.Atom("ESEARCH (TAG ")
	w.String(cmd.Tag)
	w.Atom(")")
	if cmd.UID {
		w.Atom(" UID")
	}
}

// numList lists the numbers of a set without "*".
func numList(set imap.NumSet) ([]uint32, bool) {
	switch set := set.(type) {
	case imap.SeqSet:
		return set.Nums()
	case imap.UIDSet:
		uids, ok := set.Nums()
		out := make([]uint32, len(uids))
		for i, u := range uids {
			out[i] = uint32(u)
		}
		return out, ok
	}
	return nil, false
}

// matchingIn converts the criteria's strings from charset and returns
// the matching messages with their headers, for SORT and THREAD.
func (s *session) matchingIn(charset string, criteria *imapwire.SearchCriteria) ([]*matchContext, error) {
	enc, err := searchEncoding(charset)
	if err != nil {
		return nil, err
	}
	if err := decodeSearchCriteria(criteria, enc); err != nil {
		return nil, err
	}
	return s.matching(criteria, true)
}

// searchCharset converts the criteria's strings from charset and
// searches.
func (s *session) searchCharset(uid bool, charset string, criteria *imapwire.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, [2]uint64, error) {
	enc, err := searchEncoding(charset)
	if err != nil {
		return nil, [2]uint64{}, err
	}
	if err := decodeSearchCriteria(criteria, enc); err != nil {
		return nil, [2]uint64{}, err
	}
	return s.search(uid, criteria, options)
}

// usesModSeq reports a MODSEQ key anywhere in c: the answer then
// carries the highest modseq found (RFC 7162 section 3.1.5).
func usesModSeq(c *imapwire.SearchCriteria) bool {
	return c.Walk(func(c *imapwire.SearchCriteria) bool { return c.ModSeq != nil })
}

// search runs SEARCH; ends are the modseqs of the first and last
// message found, for ESEARCH's MODSEQ with MIN or MAX alone.
func (s *session) search(uid bool, criteria *imapwire.SearchCriteria, options *imap.SearchOptions) (data *imap.SearchData, ends [2]uint64, err error) {
	sel := s.sel
	found, err := s.matching(criteria, false)
	if err != nil {
		return nil, ends, err
	}
	if len(found) > 0 {
		ends = [2]uint64{found[0].m.ModSeq, found[len(found)-1].m.ModSeq}
	}
	data = &imap.SearchData{}
	var (
		seqSet            imap.SeqSet
		uidSet            imap.UIDSet
		firstUID, lastUID uint32
	)
	for _, mc := range found {
		r := ref{mc.seq, mc.m.UID}
		uidSet.AddNum(imap.UID(r.uid))
		num := r.seq
		if uid {
			num = r.uid
		} else {
			seqSet.AddNum(r.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
			firstUID = r.uid
		}
		if num > data.Max {
			data.Max = num
			lastUID = r.uid
		}
		data.ModSeq = max(data.ModSeq, mc.m.ModSeq)
		data.Count++
	}
	if uid {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options.ReturnSave {
		sel.searchRes = savedResult(options, uidSet, firstUID, lastUID)
	}
	return data, ends, nil
}

// matching returns the messages of the selected mailbox that match
// criteria, in sequence order; with keepHeader, each with its header if
// the search read it (a sort reads it anyway).
func (s *session) matching(criteria *imapwire.SearchCriteria, keepHeader bool) ([]*matchContext, error) {
	sel := s.sel
	if searchTooDeep(criteria, 0) {
		return nil, errSearchTooDeep
	}
	refs := sel.resolve(imap.SeqSet{{Start: 1, Stop: 0}})
	var maxSeq, maxUID uint32
	if len(refs) > 0 {
		maxSeq, maxUID = refs[len(refs)-1].seq, refs[len(refs)-1].uid
	}
	c := sel.prepareCriteria(criteria, maxSeq, maxUID)
	msgs, err := s.messages(refs)
	if err != nil {
		return nil, err
	}
	var found []*matchContext
	// The contexts of the messages found are allocated in blocks; a
	// message not found gives its place to the next.
	var block []matchContext
	for _, r := range refs {
		m := msgs(r.uid)
		if m == nil {
			continue
		}
		if len(block) == cap(block) {
			block = make([]matchContext, 0, min(len(refs)-len(found), 4096))
		}
		block = append(block, matchContext{s: s, m: m, seq: r.seq})
		mc := &block[len(block)-1]
		if !mc.match(c) {
			*mc = matchContext{}
			block = block[:len(block)-1]
			continue
		}
		// What was read of the message is not kept for long.
		mc.raw, mc.loaded, mc.decoded, mc.headerText, mc.bodyText = nil, false, false, "", ""
		if !keepHeader {
			mc.header, mc.headerRead = nil, false
		}
		found = append(found, mc)
	}
	return found, nil
}

// savedResult is what SEARCHRES keeps as "$" (RFC 5182 section 2.1):
// with MIN or MAX and neither ALL nor COUNT, only those messages;
// otherwise every message found.
func savedResult(options *imap.SearchOptions, all imap.UIDSet, minUID, maxUID uint32) imap.UIDSet {
	if (!options.ReturnMin && !options.ReturnMax) || options.ReturnAll || options.ReturnCount {
		return all
	}
	var out imap.UIDSet
	if options.ReturnMin && minUID != 0 {
		out.AddNum(imap.UID(minUID))
	}
	if options.ReturnMax && maxUID != 0 {
		out.AddNum(imap.UID(maxUID))
	}
	return out
}

// searchTooDeep reports whether NOT and OR nest deeper than
// maxSearchNesting below c, looking no deeper than that.
func searchTooDeep(c *imapwire.SearchCriteria, depth int) bool {
	if depth > maxSearchNesting {
		return true
	}
	for i := range c.Not {
		if searchTooDeep(&c.Not[i], depth+1) {
			return true
		}
	}
	for i := range c.Or {
		if searchTooDeep(&c.Or[i][0], depth+1) || searchTooDeep(&c.Or[i][1], depth+1) {
			return true
		}
	}
	return false
}

// prepareCriteria copies criteria with "*" and "$" resolved and the
// search strings case-folded.
func (sel *selection) prepareCriteria(c *imapwire.SearchCriteria, maxSeq, maxUID uint32) *imapwire.SearchCriteria {
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
	out.Header = make([]imap.SearchCriteriaHeaderField, len(c.Header))
	for i, h := range c.Header {
		out.Header[i] = imap.SearchCriteriaHeaderField{Key: h.Key, Value: searchFold(h.Value)}
	}
	out.Body = foldAll(c.Body)
	out.Text = foldAll(c.Text)
	out.Not = make([]imapwire.SearchCriteria, len(c.Not))
	for i := range c.Not {
		out.Not[i] = *sel.prepareCriteria(&c.Not[i], maxSeq, maxUID)
	}
	out.Or = make([][2]imapwire.SearchCriteria, len(c.Or))
	for i := range c.Or {
		out.Or[i] = [2]imapwire.SearchCriteria{
			*sel.prepareCriteria(&c.Or[i][0], maxSeq, maxUID),
			*sel.prepareCriteria(&c.Or[i][1], maxSeq, maxUID),
		}
	}
	return &out
}

func foldAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = searchFold(s)
	}
	return out
}

// matchContext is one message under test; its header is read once, on
// the first criterion that needs it, the whole message once, on the
// first BODY or TEXT, and its text decoded then.
type matchContext struct {
	s   *session
	m   *maildir.Message
	seq uint32

	headerRead bool
	header     *mail.Header // nil if the message could not be read
	loaded     bool
	raw        []byte // nil if the message could not be read

	// fields are what SORT and THREAD compare (sortfields.go).
	fields *sortFields

	decoded bool
	// headerText holds the decoded, folded header fields of the message
	// and of every part and attached message, bodyText the decoded,
	// folded text parts and attached messages' header fields; pieces
	// are separated by NUL so that no match spans two of them.
	headerText, bodyText string
}

// maxSearchHeader bounds how much of a message HEADER and SENT* keys
// read: go-message's limit on a header.
const maxSearchHeader = 1 << 20

// loadHeader reads the message's header only: searches of header fields
// and dates, the most common, need not read what follows.
func (mc *matchContext) loadHeader() bool {
	if mc.headerRead {
		return mc.header != nil
	}
	mc.headerRead = true
	f, _, err := mc.s.sel.folder.Open(mc.s.ctx, mc.m.UID)
	if err != nil {
		return false
	}
	defer f.Close()
	// A damaged header still gives the fields before the damage.
	h, _ := textproto.ReadHeader(bufio.NewReaderSize(io.LimitReader(f, maxSearchHeader), 8<<10))
	mc.header = &mail.Header{Header: message.Header{Header: h}}
	return true
}

// load reads the whole message.
func (mc *matchContext) load() bool {
	if mc.loaded {
		return mc.raw != nil
	}
	mc.loaded = true
	f, _, err := mc.s.sel.folder.Open(mc.s.ctx, mc.m.UID)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return false
	}
	return mc.setRaw(b)
}

// setRaw gives the message's content to mc.
func (mc *matchContext) setRaw(b []byte) bool {
	mc.loaded = true
	mc.raw = b
	if !mc.headerRead {
		mc.headerRead = true
		h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
		mc.header = &mail.Header{Header: message.Header{Header: h}}
	}
	return true
}

func (mc *matchContext) match(c *imapwire.SearchCriteria) bool {
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
	if c.ModSeq != nil && m.ModSeq < c.ModSeq.ModSeq {
		return false // CONDSTORE's MODSEQ key (RFC 7162 section 3.1.5)
	}
	if !matchDate(m.InternalDate, c.Since, c.Before) {
		return false
	}
	// YOUNGER and OLDER (RFC 5032) compare to the second.
	if !c.YoungerFrom.IsZero() && m.InternalDate.Before(c.YoungerFrom) || !c.OlderUntil.IsZero() && !m.InternalDate.Before(c.OlderUntil) {
		return false
	}
	// SAVEDATESUPPORTED, SAVEDBEFORE, SAVEDON, SAVEDSINCE (RFC 8514): a
	// message whose save date is unknown matches none of them.
	if c.SaveDateKnown || !c.SavedSince.IsZero() || !c.SavedBefore.IsZero() {
		if m.SaveDate == 0 || !matchDate(time.Unix(0, m.SaveDate).UTC(), c.SavedSince, c.SavedBefore) {
			return false
		}
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
	// RFC822.SIZE, the size with CRLF line endings.
	if c.Larger != 0 && m.VSize <= c.Larger {
		return false
	}
	if c.Smaller != 0 && m.VSize >= c.Smaller {
		return false
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		if !mc.loadHeader() {
			return false
		}
	}
	if len(c.Body) > 0 || len(c.Text) > 0 {
		if !mc.load() {
			return false
		}
	}
	for _, h := range c.Header {
		if !matchFields(h.Key, mc.header.FieldsByKey(h.Key), h.Value) {
			return false
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		if !matchDate(mc.sentDate(), c.SentSince, c.SentBefore) {
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

// sentDate is the Date header field's date in its own time zone, which
// SENTBEFORE, SENTON and SENTSINCE compare disregarding time and zone
// (RFC 3501 section 6.4.4). A message without a readable Date field
// is dated by its INTERNALDATE, as RFC 5256 section 2.2 does for SORT.
func (mc *matchContext) sentDate() time.Time {
	v := strings.TrimSpace(mc.header.Get("Date"))
	if v != "" {
		if t, err := netmail.ParseDate(v); err == nil {
			return t
		}
	}
	return mc.m.InternalDate
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

// decodeHeaderValue decodes a header field's RFC 2047 words in any
// charset decodeCharset knows. Raw 8-bit text that is not UTF-8 (RFC
// 6532 allows UTF-8 only) is read as Windows-1252, what such mail is
// mostly written in.
func decodeHeaderValue(v string) string {
	dec := mime.WordDecoder{CharsetReader: decodeCharset}
	if d, err := dec.DecodeHeader(v); err == nil {
		v = d
	}
	return legacyToUTF8(v)
}

// legacyToUTF8 returns s, or s read as Windows-1252 when it is not UTF-8.
func legacyToUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if d, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return d
	}
	return s
}

// matchFields reports whether one of fields contains the folded pattern,
// or, for an empty pattern, whether there is such a field.
func matchFields(key string, fields message.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	addresses := isAddressField(key)
	for fields.Next() {
		if strings.Contains(searchFold(decodeHeaderValue(fields.Value())), pattern) {
			return true
		}
		if !addresses {
			continue
		}
		// Also the addresses as parsed, "Name <local@domain>": the field
		// may hold comments or folding inside an address, as Dovecot
		// matches "FROM user@domain.org" in "<user (c)@ (c) domain.org>".
		for _, a := range parseAddressList(unfold(fields.Value())) {
			if a.Host == "" {
				continue // a group marker
			}
			if strings.Contains(searchFold(a.Name+" <"+a.Mailbox+"@"+a.Host+">"), pattern) {
				return true
			}
		}
	}
	return false
}

// isAddressField reports whether a header field holds an address list.
func isAddressField(key string) bool {
	switch strings.ToLower(key) {
	case "from", "to", "cc", "bcc", "sender", "reply-to", "resent-from", "resent-to", "resent-cc", "resent-bcc", "resent-sender":
		return true
	}
	return false
}

// matchText searches the decoded text parts for the folded pattern, and
// with header the header fields of the message and its parts too.
func (mc *matchContext) matchText(pattern string, header bool) bool {
	if !mc.decoded {
		mc.decoded = true
		var hb, bb strings.Builder
		if e, err := message.Read(bytes.NewReader(mc.raw)); e != nil {
			walkEntity(e, err, &hb, &bb, false, 0)
		} else {
			bb.WriteString(legacyToUTF8(string(mc.raw)))
		}
		mc.headerText = searchFold(hb.String())
		mc.bodyText = searchFold(bb.String())
	}
	return strings.Contains(mc.bodyText, pattern) || (header && strings.Contains(mc.headerText, pattern))
}

// maxSearchDepth bounds MIME nesting followed by SEARCH.
const maxSearchDepth = 20

// walkEntity writes e's decoded header fields to hb (and, for a message
// attached to another, to bb as well: they are part of the outer
// message's body), and the decoded text of e's text parts and attached
// messages to bb. err is the error go-message returned with e.
func walkEntity(e *message.Entity, err error, hb, bb *strings.Builder, attached bool, depth int) {
	for f := e.Header.Fields(); f.Next(); {
		line := f.Key() + ": " + decodeHeaderValue(f.Value()) + "\x00"
		hb.WriteString(line)
		if attached {
			bb.WriteString(line)
		}
	}
	if depth >= maxSearchDepth {
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			// A part with an unknown charset or encoding comes with
			// an error; it is searched as it is.
			p, err := mr.NextPart()
			if p == nil {
				return
			}
			walkEntity(p, err, hb, bb, false, depth+1)
		}
	}
	t, params, _ := e.Header.ContentType()
	switch {
	case t == "message/rfc822" || t == "message/global":
		if inner, err := message.Read(io.LimitReader(e.Body, maxSearchPart)); inner != nil {
			walkEntity(inner, err, hb, bb, true, depth+1)
		}
		return
	case t != "" && !strings.HasPrefix(t, "text/"):
		return
	}
	var body io.Reader = e.Body
	cs := strings.ToLower(params["charset"])
	if cs != "" && message.CharsetReader != nil && !message.IsUnknownCharset(err) {
		// The application installed go-message's charset conversion,
		// which has already decoded the part.
		cs = "utf-8"
	}
	if cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := decodeCharset(cs, body); err == nil {
			body = r
			cs = "utf-8"
		}
	}
	b, _ := io.ReadAll(io.LimitReader(body, maxSearchPart))
	if cs == "utf-8" {
		bb.Write(b)
	} else {
		bb.WriteString(legacyToUTF8(string(b)))
	}
	bb.WriteByte(0)
}
