package imapwire

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// searchTooDeep is the text of SEARCH's nesting limit.
const searchTooDeep = "SEARCH keys nested deeper than %d levels"

// search reads SEARCH's arguments.
func (r *Reader) search() *Search {
	s := &Search{}
	r.sp()
	// RETURN and CHARSET come first; the word read is otherwise the
	// first key's name.
	word := r.leadingWord()
	if word == "RETURN" {
		s.ESearch = true
		r.searchReturn(&s.Return, &s.Context)
		word = r.leadingWord()
	}
	if word == "CHARSET" {
		r.sp()
		s.Charset = r.charsetName()
		r.sp()
		word = ""
	}
	s.Criteria = r.searchProgram(word)
	return s
}

// leadingWord reads an atom if one comes next (a search key's name, or
// RETURN or CHARSET), or returns "" for a parenthesis, a number or a set.
func (r *Reader) leadingWord() string {
	if c := r.peek(); c == '(' || c == '*' || c == '$' || c >= '0' && c <= '9' {
		return ""
	}
	return r.upperAtom("a SEARCH key")
}

// searchReturn reads ESEARCH's "(...) " after RETURN (RFC 4731, RFC
// 5182's SAVE).
func (r *Reader) searchReturn(o *imap.SearchOptions, ctx *ContextReturn) {
	r.sp()
	n := 0
	r.list(func() {
		n++
		switch name := r.upperAtom("a SEARCH return option"); name {
		case "MIN":
			o.ReturnMin = true
		case "MAX":
			o.ReturnMax = true
		case "ALL":
			o.ReturnAll = true
		case "COUNT":
			o.ReturnCount = true
		case "SAVE":
			o.ReturnSave = true
			r.save = true
		case "UPDATE", "CONTEXT", "PARTIAL":
			r.contextReturn(ctx, name)
		default:
			r.syntax("Unknown SEARCH return option")
		}
	})
	if n == 0 {
		// RETURN () is RETURN (ALL) (RFC 4731 section 3.1).
		o.ReturnAll = true
	}
	r.sp()
}

// searchProgram reads 1*(search-key) separated by spaces to the end of
// the command.
func (r *Reader) searchProgram(first string) *SearchCriteria {
	c := &SearchCriteria{}
	if first != "" {
		r.searchKeyNamed(c, first)
	} else {
		r.searchKey(c)
	}
	for !r.atEOL() {
		r.sp()
		r.searchKey(c)
	}
	return c
}

// nest enters one level of NOT, OR or parentheses.
func (r *Reader) nest() {
	if r.depth++; r.depth > r.Limits.MaxSearchDepth {
		r.fail(imap.ResponseCodeLimit, searchTooDeep, r.Limits.MaxSearchDepth)
	}
}

// searchKey reads one search key into c (the keys of a command are
// ANDed).
func (r *Reader) searchKey(c *SearchCriteria) {
	switch ch := r.peek(); {
	case ch == '(':
		r.nest()
		r.take()
		sub := &SearchCriteria{}
		r.searchKey(sub)
		for !r.maybe(')') {
			r.sp()
			r.searchKey(sub)
		}
		c.And(sub)
		r.depth--
		return
	case ch == '*' || ch == '$' || ch >= '1' && ch <= '9':
		set := r.seqSet(false)
		if imap.IsSearchRes(set) {
			c.UID = append(c.UID, imap.SearchRes())
		} else {
			c.SeqNum = append(c.SeqNum, set.(imap.SeqSet))
		}
		return
	}
	r.searchKeyNamed(c, r.upperAtom("a SEARCH key"))
}

// searchKeyNamed reads the rest of the search key named key.
func (r *Reader) searchKeyNamed(c *SearchCriteria, key string) {
	header := func(name string) {
		r.sp()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: name, Value: r.astring("a string")})
	}
	flag := func(f imap.Flag, not bool) {
		if not {
			c.NotFlag = append(c.NotFlag, f)
		} else {
			c.Flag = append(c.Flag, f)
		}
	}
	switch key {
	case "ALL":
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN", "RECENT":
		flag(systemFlag(key), false)
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		flag(systemFlag(key[2:]), true)
	case "NEW":
		flag("\\Recent", false)
		flag(imap.FlagSeen, true)
	case "OLD":
		flag("\\Recent", true)
	case "KEYWORD", "UNKEYWORD":
		r.sp()
		flag(imap.Flag(r.atom("a keyword")), key == "UNKEYWORD")
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		header(key[:1] + asciiLower(key[1:]))
	case "HEADER":
		r.sp()
		header(r.astring("a header field name"))
	case "BODY":
		r.sp()
		c.Body = append(c.Body, r.astring("a string"))
	case "TEXT":
		r.sp()
		c.Text = append(c.Text, r.astring("a string"))
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		r.sp()
		d := r.date()
		// Through And, so that two keys on one date intersect.
		sub := &SearchCriteria{}
		since, before := &sub.Since, &sub.Before
		if strings.HasPrefix(key, "SENT") {
			since, before = &sub.SentSince, &sub.SentBefore
			key = key[4:]
		}
		switch key {
		case "SINCE":
			*since = d
		case "BEFORE":
			*before = d
		case "ON":
			*since, *before = d, d.AddDate(0, 0, 1)
		}
		c.And(sub)
	case "YOUNGER", "OLDER":
		// RFC 5032: n seconds before now, against INTERNALDATE.
		r.sp()
		at := time.Now().Add(-time.Duration(r.number()) * time.Second)
		if key == "YOUNGER" {
			c.And(&SearchCriteria{YoungerFrom: at})
		} else {
			c.And(&SearchCriteria{OlderUntil: at.Add(time.Second)})
		}
	case "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE":
		r.sp()
		d := r.date()
		sub := &SearchCriteria{SaveDateKnown: true}
		switch key {
		case "SAVEDSINCE":
			sub.SavedSince = d
		case "SAVEDBEFORE":
			sub.SavedBefore = d
		case "SAVEDON":
			sub.SavedSince, sub.SavedBefore = d, d.AddDate(0, 0, 1)
		}
		c.And(sub)
	case "SAVEDATESUPPORTED":
		// Every message whose save date is known (RFC 8514 section 4.3).
		c.And(&SearchCriteria{SaveDateKnown: true})
	case "LARGER", "SMALLER":
		r.sp()
		// LARGER 0 stays unset: zero means no bound, and every stored
		// message has a header.
		n := int64(r.number())
		if key == "LARGER" {
			c.And(&SearchCriteria{Larger: n})
		} else {
			c.And(&SearchCriteria{Smaller: n})
		}
	case "UID":
		r.sp()
		c.UID = append(c.UID, r.seqSet(true).(imap.UIDSet))
	case "NOT":
		r.nest()
		r.sp()
		sub := SearchCriteria{}
		r.searchKey(&sub)
		c.Not = append(c.Not, sub)
		r.depth--
	case "OR":
		r.nest()
		var pair [2]SearchCriteria
		r.sp()
		r.searchKey(&pair[0])
		r.sp()
		r.searchKey(&pair[1])
		c.Or = append(c.Or, pair)
		r.depth--
	case "MODSEQ":
		r.sp()
		m := &imap.SearchCriteriaModSeq{}
		if r.peek() == '"' {
			// entry-name entry-type-req (RFC 7162 section 3.1.5).
			m.MetadataName = r.quoted()
			r.sp()
			switch t := asciiLower(r.atom("an entry type")); t {
			case "all", "priv", "shared":
				m.MetadataType = imap.SearchCriteriaMetadataType(t)
			default:
				r.syntax("Unknown MODSEQ entry type")
			}
			r.sp()
		}
		m.ModSeq = r.number64()
		c.And(&SearchCriteria{ModSeq: m})
	default:
		r.fail(imap.ResponseCodeClientBug, "Unknown SEARCH key")
	}
}

// systemFlag returns the flag of a SEARCH key's name, "SEEN" → \Seen.
func systemFlag(name string) imap.Flag {
	return imap.Flag("\\" + name[:1] + asciiLower(name[1:]))
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// sort reads SORT's arguments (RFC 5256, ESORT of RFC 5267, SORT=DISPLAY
// of RFC 5957).
func (r *Reader) sort() *Sort {
	s := &Sort{}
	r.sp()
	if r.peek() != '(' {
		if r.upperAtom("RETURN") != "RETURN" {
			r.syntax("Expected RETURN or sort keys")
		}
		s.ESearch = true
		r.searchReturn(&s.Return, &s.Context)
	}
	reverse := false
	r.list(func() {
		key := r.upperAtom("a sort key")
		switch key {
		case "REVERSE":
			if reverse {
				r.syntax("REVERSE twice")
			}
			reverse = true
			return
		case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
		default:
			r.syntax("Unknown sort key")
		}
		s.Keys = append(s.Keys, SortKey{Key: key, Reverse: reverse})
		reverse = false
	})
	if len(s.Keys) == 0 || reverse {
		r.syntax("Expected a sort key")
	}
	r.sp()
	s.Charset, s.Criteria = r.charsetProgram()
	return s
}

// thread reads THREAD's arguments.
func (r *Reader) thread() *Thread {
	t := &Thread{}
	r.sp()
	t.Algorithm = r.upperAtom("a thread algorithm")
	switch t.Algorithm {
	case "ORDEREDSUBJECT", "REFERENCES", "REFS":
	default:
		r.syntax("Unknown thread algorithm")
	}
	r.sp()
	t.Charset, t.Criteria = r.charsetProgram()
	return t
}

// charsetProgram reads SORT's and THREAD's charset and search keys.
func (r *Reader) charsetProgram() (string, *SearchCriteria) {
	charset := r.charsetName()
	r.sp()
	return charset, r.searchProgram("")
}
