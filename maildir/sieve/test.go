package sieve

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

func (in *interp) test(t *Test) (bool, error) {
	if err := in.step(t.Pos); err != nil {
		return false, err
	}
	a := t.a
	switch t.Name {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "not":
		ok, err := in.test(t.Tests[0])
		return !ok, err
	case "allof", "anyof":
		all := t.Name == "allof"
		for _, sub := range t.Tests {
			ok, err := in.test(sub)
			if err != nil {
				return false, err
			}
			if ok != all {
				return ok, nil
			}
		}
		return all, nil
	case "exists":
		for _, n := range in.strs(a.pos[0].Strs) {
			if fieldValues(in.hdr, n) == nil {
				return false, nil
			}
		}
		return true, nil
	case "size":
		lim := a.pos[0].Num
		if a.has("over") {
			return in.msg.Size() > lim, nil
		}
		return in.msg.Size() < lim, nil
	case "header":
		var vals []string
		for _, n := range in.strs(a.pos[0].Strs) {
			vals = append(vals, in.pick(a, fieldValues(in.hdr, n))...)
		}
		for i := range vals {
			vals[i] = decodeValue(vals[i])
		}
		return in.matchValues(a, vals, in.strs(a.pos[1].Strs))
	case "address":
		var vals []string
		for _, n := range in.strs(a.pos[0].Strs) {
			for _, v := range in.pick(a, fieldValues(in.hdr, n)) {
				for _, ad := range parseAddresses(v) {
					if s, ok := in.part(a, ad); ok {
						vals = append(vals, s)
					}
				}
			}
		}
		return in.matchValues(a, vals, in.strs(a.pos[1].Strs))
	case "envelope":
		var vals []string
		for _, n := range in.strs(a.pos[0].Strs) {
			var v string
			switch lower(n) {
			case "from":
				v = in.env.From
			case "to":
				v = in.env.To
			default:
				continue
			}
			ad := splitAddr(v)
			if v == "" {
				ad = addr{ok: true}
			}
			if s, ok := in.part(a, ad); ok {
				vals = append(vals, s)
			}
		}
		return in.matchValues(a, vals, in.strs(a.pos[1].Strs))
	case "string":
		vals := in.strs(a.pos[0].Strs)
		if a.match == "count" {
			var ne []string
			for _, v := range vals {
				if v != "" {
					ne = append(ne, v)
				}
			}
			vals = ne
		}
		return in.matchValues(a, vals, in.strs(a.pos[1].Strs))
	case "hasflag":
		var flags []string
		if len(a.pos) == 2 {
			for _, n := range in.strs(a.pos[0].Strs) {
				v, _ := in.lookup(n)
				flags = mergeFlags(flags, parseFlags([]string{v}))
			}
		} else {
			flags = in.flags
		}
		return in.matchValues(a, flags, in.strs(a.pos[len(a.pos)-1].Strs))
	case "body":
		vals, err := in.bodyValues(a)
		if err != nil {
			return false, err
		}
		return in.matchValues(a, vals, in.strs(a.pos[0].Strs))
	case "date", "currentdate":
		var times []time.Time
		var orig bool
		if t.Name == "date" {
			for _, v := range in.pick(a, fieldValues(in.hdr, in.str(a.pos[0].Strs[0]))) {
				d, err := parseDate(v)
				if err == nil {
					times = append(times, d)
				}
			}
			orig = a.has("originalzone")
		} else {
			times = []time.Time{in.now}
		}
		var zone *time.Location
		if z, ok := a.str("zone"); ok {
			zone = parseZone(in.str(z))
			if zone == nil {
				return false, nil
			}
		} else if !orig {
			zone = in.opts.Location
			if zone == nil {
				zone = time.UTC
			}
		}
		part := lower(in.str(a.pos[len(a.pos)-2].Strs[0]))
		var vals []string
		for _, d := range times {
			if zone != nil {
				d = d.In(zone)
			}
			if s, ok := formatPart(d, part); ok {
				vals = append(vals, s)
			}
		}
		return in.matchValues(a, vals, in.strs(a.pos[len(a.pos)-1].Strs))
	case "mailboxexists":
		if in.opts.Mailboxes == nil {
			return false, nil
		}
		for _, n := range in.strs(a.pos[0].Strs) {
			if !in.opts.Mailboxes.Exists(n) {
				return false, nil
			}
		}
		return true, nil
	}
	return false, errAt(t.Pos, "test %s not implemented", t.Name)
}

// pick applies :index and :last (RFC 5260 section 6).
func (in *interp) pick(a *args, vals []string) []string {
	if a.index == 0 {
		return vals
	}
	k := a.index - 1
	if a.last {
		k = len(vals) - a.index
	}
	if k < 0 || k >= len(vals) {
		return nil
	}
	return vals[k : k+1]
}

func (in *interp) part(a *args, ad addr) (string, bool) {
	switch a.part {
	case "all":
		return ad.all, true
	case "localpart":
		return ad.local, ad.ok
	case "domain":
		return ad.domain, ad.ok
	case "user", "detail":
		if !ad.ok {
			return "", false
		}
		user, detail, found := strings.Cut(ad.local, in.opts.Separator)
		if a.part == "user" {
			return user, true
		}
		return detail, found
	}
	return "", false
}

// matchValues is the match of RFC 5228 section 2.7: true when any value
// matches any key. A successful :matches or :regex sets the match variables.
func (in *interp) matchValues(a *args, vals, keys []string) (bool, error) {
	if a.match == "count" {
		n := strconv.Itoa(len(vals))
		for _, k := range keys {
			if relate(a.rel, compare(a.comparator, n, k)) {
				return true, nil
			}
		}
		return false, nil
	}
	for _, v := range vals {
		for ki, k := range keys {
			if err := in.step(Pos{}); err != nil {
				return false, err
			}
			// Every comparison reads its value and key at least once
			// (:matches counts its backtracking on top).
			if err := in.charge(int64(len(v) + len(k))); err != nil {
				return false, err
			}
			switch a.match {
			case "is":
				if compare(a.comparator, v, k) == 0 {
					return true, nil
				}
			case "contains":
				if a.comparator == "i;octet" && strings.Contains(v, k) || a.comparator != "i;octet" && strings.Contains(lowerASCII(v), lowerASCII(k)) {
					return true, nil
				}
			case "value":
				if relate(a.rel, compare(a.comparator, v, k)) {
					return true, nil
				}
			case "matches":
				caps, ok, err := glob(k, v, a.comparator != "i;octet", in.charge)
				if err != nil {
					return false, err
				}
				if ok {
					in.setMatch(append([]string{v}, caps...))
					return true, nil
				}
			case "regex":
				var re *regexp.Regexp
				if a.regex != nil {
					re = a.regex[ki]
				} else {
					var err error
					if re, err = compileRegex(k, a.comparator); err != nil {
						return false, &Error{Msg: fmt.Sprintf("bad regular expression %q", k)}
					}
				}
				if err := in.charge(int64(len(v)) * int64(len(re.String())+regexWorkDivisor) / regexWorkDivisor); err != nil {
					return false, err
				}
				if m := re.FindStringSubmatch(v); m != nil {
					in.setMatch(m)
					return true, nil
				}
			}
		}
	}
	return false, nil
}

func (in *interp) setMatch(m []string) {
	if in.sc.script.Require["variables"] {
		if len(m) > 10 {
			m = m[:10]
		}
		in.match = m
	}
}

// compare orders a and b under a comparator (RFC 4790).
func compare(comparator, a, b string) int {
	switch comparator {
	case "i;octet":
		return strings.Compare(a, b)
	case "i;ascii-numeric":
		na, oka := leadingNumber(a)
		nb, okb := leadingNumber(b)
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			return 1
		case !okb:
			return -1
		}
		// compare as decimal strings of digits without leading zeros
		if len(na) != len(nb) {
			if len(na) < len(nb) {
				return -1
			}
			return 1
		}
		return strings.Compare(na, nb)
	}
	return strings.Compare(lowerASCII(a), lowerASCII(b))
}

func leadingNumber(s string) (string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", false
	}
	n := strings.TrimLeft(s[:i], "0")
	return n, true
}

func relate(op string, c int) bool {
	switch op {
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	}
	return false
}

// glob matches v against a :matches pattern, each "*" taking as little as
// it can, and returns what each wildcard matched. It tells charge of its
// work (characters compared, backtracking included) every workPerStep
// characters, and stops with charge's error.
func glob(pattern, v string, fold bool, charge func(int64) error) ([]string, bool, error) {
	type tok struct {
		kind byte // 'l' literal, '?', '*'
		r    rune
	}
	var pat []tok
	pr := []rune(pattern)
	for i := 0; i < len(pr); i++ {
		switch pr[i] {
		case '*', '?':
			pat = append(pat, tok{kind: byte(pr[i])})
		case '\\':
			if i+1 < len(pr) {
				i++
			}
			pat = append(pat, tok{kind: 'l', r: pr[i]})
		default:
			pat = append(pat, tok{kind: 'l', r: pr[i]})
		}
	}
	s := []rune(v)
	eq := func(a, b rune) bool {
		if fold && a < 128 && b < 128 {
			if 'A' <= a && a <= 'Z' {
				a += 32
			}
			if 'A' <= b && b <= 'Z' {
				b += 32
			}
		}
		return a == b
	}
	// ends[k] is where pattern token k's match ends (for captures).
	start := make([]int, len(pat))
	end := make([]int, len(pat))
	pi, si := 0, 0
	starP, starS := -1, 0
	work := int64(0)
	for si < len(s) || pi < len(pat) {
		if work++; work == workPerStep {
			if err := charge(work); err != nil {
				return nil, false, err
			}
			work = 0
		}
		if pi < len(pat) {
			switch pat[pi].kind {
			case '*':
				starP, starS = pi, si
				start[pi], end[pi] = si, si
				pi++
				continue
			case '?':
				if si < len(s) {
					start[pi], end[pi] = si, si+1
					pi++
					si++
					continue
				}
			default:
				if si < len(s) && eq(pat[pi].r, s[si]) {
					pi++
					si++
					continue
				}
			}
		}
		if starP >= 0 && starS < len(s) {
			starS++
			pi, si = starP+1, starS
			end[starP] = starS
			continue
		}
		return nil, false, charge(work)
	}
	var caps []string
	for k, t := range pat {
		if t.kind != 'l' {
			caps = append(caps, string(s[start[k]:end[k]]))
		}
	}
	return caps, true, charge(work)
}

// bodyValues gives the texts the body test looks at (RFC 5173).
func (in *interp) bodyValues(a *args) ([]string, error) {
	if a.has("raw") {
		b, err := io.ReadAll(io.NewSectionReader(in.msg.Body, 0, in.msg.BodySize))
		if err != nil {
			return nil, err
		}
		return []string{string(b)}, nil
	}
	types := []string{"text"}
	if p, ok := a.tags["content"]; ok {
		types = in.strs(p.Strs)
	}
	var hdr strings.Builder
	for _, f := range in.msg.Header {
		hdr.WriteString(f.Name + ":" + f.Value + "\r\n")
	}
	hdr.WriteString("\r\n")
	r := io.MultiReader(strings.NewReader(hdr.String()), io.NewSectionReader(in.msg.Body, 0, in.msg.BodySize))
	ent, err := message.Read(r)
	if ent == nil {
		return nil, nil
	}
	_ = err // an unknown charset or encoding still gives the raw text
	var out []string
	var walk func(e *message.Entity, depth int) error
	walk = func(e *message.Entity, depth int) error {
		if depth > 16 {
			return nil
		}
		mt, _, err := e.Header.ContentType()
		if err != nil || mt == "" {
			mt = "text/plain"
		}
		if mr := e.MultipartReader(); mr != nil {
			if wants(types, mt) && !a.has("text") && a.has("content") {
				out = append(out, "") // multipart's own text is its prologue and epilogue
			}
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return nil
				}
				if err := walk(p, depth+1); err != nil {
					return err
				}
			}
		}
		if !wants(types, mt) {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(e.Body, 16<<20))
		out = append(out, string(b))
		return nil
	}
	if err := walk(ent, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func wants(types []string, mt string) bool {
	mt = lower(mt)
	for _, t := range types {
		t = lower(t)
		if t == "" || t == mt || !strings.Contains(t, "/") && strings.HasPrefix(mt, t+"/") {
			return true
		}
	}
	return false
}

func parseDate(v string) (time.Time, error) {
	v = decodeValue(v)
	// A Received field's date follows its last semicolon (RFC 5260 section 4).
	if i := strings.LastIndexByte(v, ';'); i >= 0 {
		v = strings.TrimSpace(v[i+1:])
	}
	if i := strings.IndexByte(v, '('); i > 0 {
		v = strings.TrimSpace(v[:i])
	}
	return mail.ParseDate(v)
}

func parseZone(z string) *time.Location {
	if len(z) != 5 || (z[0] != '+' && z[0] != '-') {
		return nil
	}
	h, err1 := strconv.Atoi(z[1:3])
	m, err2 := strconv.Atoi(z[3:5])
	if err1 != nil || err2 != nil || h > 23 || m > 59 {
		return nil
	}
	off := h*3600 + m*60
	if z[0] == '-' {
		off = -off
	}
	return time.FixedZone(z, off)
}

func datePart(p string) bool {
	_, ok := formatPart(time.Unix(0, 0), p)
	return ok
}

func formatPart(d time.Time, part string) (string, bool) {
	switch part {
	case "year":
		return fmt.Sprintf("%04d", d.Year()), true
	case "month":
		return fmt.Sprintf("%02d", int(d.Month())), true
	case "day":
		return fmt.Sprintf("%02d", d.Day()), true
	case "date":
		return d.Format("2006-01-02"), true
	case "julian":
		y, m, day := d.Date()
		mjd := time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Sub(time.Date(1858, 11, 17, 0, 0, 0, 0, time.UTC)).Hours() / 24
		return strconv.Itoa(int(mjd)), true
	case "hour":
		return fmt.Sprintf("%02d", d.Hour()), true
	case "minute":
		return fmt.Sprintf("%02d", d.Minute()), true
	case "second":
		return fmt.Sprintf("%02d", d.Second()), true
	case "time":
		return d.Format("15:04:05"), true
	case "iso8601":
		return d.Format("2006-01-02T15:04:05Z07:00"), true
	case "std11":
		return d.Format("Mon, 02 Jan 2006 15:04:05 -0700"), true
	case "zone":
		return d.Format("-0700"), true
	case "weekday":
		return strconv.Itoa(int(d.Weekday())), true
	}
	return "", false
}

var _ = mime.QEncoding
