package sieve

import (
	"regexp"
	"strings"
)

// Capabilities lists the extensions this interpreter supports, as "require"
// names them and ManageSieve announces them.
var Capabilities = []string{
	"fileinto", "reject", "ereject", "envelope",
	"imap4flags", "body", "variables", "vacation", "vacation-seconds", "subaddress", "copy",
	"relational", "regex", "date", "index", "editheader", "mailbox", "include",
	"comparator-i;ascii-numeric", "comparator-i;octet", "comparator-i;ascii-casemap",
}

func supported(ext string) bool {
	for _, c := range Capabilities {
		if c == ext {
			return true
		}
	}
	return false
}

// args is the validated form of a command's or test's arguments.
type args struct {
	tags       map[string]*Arg // tag -> its parameter (nil if it takes none)
	pos        []Arg
	comparator string
	match      string // is, contains, matches, regex, value, count
	rel        string // relational operator for value and count
	part       string // address part: all, localpart, domain, user, detail
	index      int
	last       bool
	regex      []*regexp.Regexp // keys compiled when constant
}

func (a *args) has(tag string) bool { _, ok := a.tags[tag]; return ok }

func (a *args) str(tag string) (string, bool) {
	p, ok := a.tags[tag]
	if !ok || p == nil {
		return "", false
	}
	return p.Strs[0], true
}

type param int

const (
	pNone param = iota
	pNum
	pStr
	pList
)

type spec struct {
	ext           string
	tags          map[string]param
	cmp, mt, addr bool // takes COMPARATOR, MATCH-TYPE, ADDRESS-PART
	index         bool // takes :index/:last (index extension)
	pos           string
	minPos        int
	tests         int // 0 none, 1 a test, 2 a list of tests
	block         bool
	keysAt        int // position of the key list, -1 if none
	zone          bool
	excl          [][]string // mutually exclusive tags
}

var specs = map[string]spec{
	// commands
	"require":      {pos: "l", minPos: 1, keysAt: -1},
	"if":           {tests: 1, block: true, keysAt: -1},
	"elsif":        {tests: 1, block: true, keysAt: -1},
	"else":         {block: true, keysAt: -1},
	"stop":         {keysAt: -1},
	"keep":         {tags: map[string]param{"flags": pList}, keysAt: -1},
	"discard":      {keysAt: -1},
	"redirect":     {tags: map[string]param{"copy": pNone}, pos: "s", minPos: 1, keysAt: -1},
	"fileinto":     {ext: "fileinto", tags: map[string]param{"copy": pNone, "flags": pList, "create": pNone}, pos: "s", minPos: 1, keysAt: -1},
	"reject":       {ext: "reject", pos: "s", minPos: 1, keysAt: -1},
	"ereject":      {ext: "ereject", pos: "s", minPos: 1, keysAt: -1},
	"setflag":      {ext: "imap4flags", pos: "ll", minPos: 1, keysAt: -1},
	"addflag":      {ext: "imap4flags", pos: "ll", minPos: 1, keysAt: -1},
	"removeflag":   {ext: "imap4flags", pos: "ll", minPos: 1, keysAt: -1},
	"set":          {ext: "variables", tags: map[string]param{"lower": pNone, "upper": pNone, "lowerfirst": pNone, "upperfirst": pNone, "quotewildcard": pNone, "quoteregex": pNone, "length": pNone}, pos: "ss", minPos: 2, keysAt: -1},
	"vacation":     {ext: "vacation", tags: map[string]param{"days": pNum, "seconds": pNum, "subject": pStr, "from": pStr, "addresses": pList, "mime": pNone, "handle": pStr}, pos: "s", minPos: 1, keysAt: -1, excl: [][]string{{"days", "seconds"}}},
	"addheader":    {ext: "editheader", tags: map[string]param{"last": pNone}, pos: "ss", minPos: 2, keysAt: -1},
	"deleteheader": {ext: "editheader", cmp: true, mt: true, index: true, pos: "sl", minPos: 1, keysAt: 1},
	"include":      {ext: "include", tags: map[string]param{"personal": pNone, "global": pNone, "once": pNone, "optional": pNone}, pos: "s", minPos: 1, keysAt: -1, excl: [][]string{{"personal", "global"}}},
	"return":       {ext: "include", keysAt: -1},
	"global":       {ext: "include", pos: "l", minPos: 1, keysAt: -1},
	// tests
	"true":          {keysAt: -1},
	"false":         {keysAt: -1},
	"not":           {tests: 1, keysAt: -1},
	"allof":         {tests: 2, keysAt: -1},
	"anyof":         {tests: 2, keysAt: -1},
	"exists":        {pos: "l", minPos: 1, keysAt: -1},
	"size":          {tags: map[string]param{"over": pNone, "under": pNone}, pos: "n", minPos: 1, keysAt: -1, excl: [][]string{{"over", "under"}}},
	"header":        {cmp: true, mt: true, index: true, pos: "ll", minPos: 2, keysAt: 1},
	"address":       {cmp: true, mt: true, addr: true, index: true, pos: "ll", minPos: 2, keysAt: 1},
	"envelope":      {ext: "envelope", cmp: true, mt: true, addr: true, pos: "ll", minPos: 2, keysAt: 1},
	"body":          {ext: "body", cmp: true, mt: true, tags: map[string]param{"raw": pNone, "content": pList, "text": pNone}, pos: "l", minPos: 1, keysAt: 0, excl: [][]string{{"raw", "content", "text"}}},
	"string":        {ext: "variables", cmp: true, mt: true, pos: "ll", minPos: 2, keysAt: 1},
	"hasflag":       {ext: "imap4flags", cmp: true, mt: true, pos: "ll", minPos: 1, keysAt: -1},
	"date":          {ext: "date", cmp: true, mt: true, index: true, zone: true, pos: "ssl", minPos: 3, keysAt: 2},
	"currentdate":   {ext: "date", cmp: true, mt: true, zone: true, pos: "sl", minPos: 2, keysAt: 1},
	"mailboxexists": {ext: "mailbox", pos: "l", minPos: 1, keysAt: -1},
}

var commandOnly = map[string]bool{
	"require": true, "if": true, "elsif": true, "else": true, "stop": true, "keep": true,
	"discard": true, "redirect": true, "fileinto": true, "reject": true, "ereject": true,
	"setflag": true, "addflag": true, "removeflag": true, "set": true, "vacation": true,
	"addheader": true, "deleteheader": true, "include": true, "return": true, "global": true,
}

type checker struct {
	req      map[string]bool
	sawOther bool
}

func (s *Script) check() error {
	c := &checker{req: s.Require}
	return c.commands(s.Commands, true)
}

func (c *checker) commands(cmds []*Command, top bool) error {
	for _, cmd := range cmds {
		if cmd.Name == "require" {
			if !top || c.sawOther {
				return errAt(cmd.Pos, "require must come before other commands")
			}
		} else {
			c.sawOther = true
		}
		if err := c.command(cmd); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) command(cmd *Command) error {
	sp, ok := specs[cmd.Name]
	if !ok || !commandOnly[cmd.Name] {
		return errAt(cmd.Pos, "unknown command %s", cmd.Name)
	}
	if sp.ext != "" && !c.req[sp.ext] {
		return errAt(cmd.Pos, "%s requires %q", cmd.Name, sp.ext)
	}
	a, err := c.args(cmd.Pos, cmd.Name, sp, cmd.Args)
	if err != nil {
		return err
	}
	cmd.a = a
	if cmd.Name == "require" {
		for _, ext := range a.pos[0].Strs {
			if !supported(ext) {
				return errAt(cmd.Pos, "unsupported extension %q", ext)
			}
			c.req[ext] = true
		}
		if c.req["vacation-seconds"] {
			c.req["vacation"] = true // it implies vacation (RFC 6131)
		}
		if c.req["ereject"] {
			c.req["reject"] = true // Pigeonhole treats them as one family
		}
	}
	switch {
	case sp.tests == 1 && cmd.Test == nil:
		return errAt(cmd.Pos, "%s needs a test", cmd.Name)
	case sp.tests == 0 && cmd.Test != nil:
		return errAt(cmd.Test.Pos, "%s takes no test", cmd.Name)
	case sp.block && cmd.Block == nil:
		return errAt(cmd.Pos, "%s needs a block", cmd.Name)
	case !sp.block && cmd.Block != nil:
		return errAt(cmd.Pos, "%s takes no block", cmd.Name)
	}
	if cmd.Test != nil {
		if err := c.test(cmd.Test); err != nil {
			return err
		}
	}
	if cmd.Block != nil {
		if err := c.commands(cmd.Block, false); err != nil {
			return err
		}
	}
	if cmd.Else != nil {
		return c.command(cmd.Else)
	}
	return nil
}

func (c *checker) test(t *Test) error {
	sp, ok := specs[t.Name]
	if !ok || commandOnly[t.Name] {
		return errAt(t.Pos, "unknown test %s", t.Name)
	}
	if sp.ext != "" && !c.req[sp.ext] {
		return errAt(t.Pos, "%s requires %q", t.Name, sp.ext)
	}
	a, err := c.args(t.Pos, t.Name, sp, t.Args)
	if err != nil {
		return err
	}
	t.a = a
	switch {
	case sp.tests == 0 && len(t.Tests) > 0:
		return errAt(t.Pos, "%s takes no tests", t.Name)
	case sp.tests == 1 && len(t.Tests) != 1:
		return errAt(t.Pos, "%s takes one test", t.Name)
	case sp.tests == 2 && len(t.Tests) == 0:
		return errAt(t.Pos, "%s needs a list of tests", t.Name)
	}
	for _, sub := range t.Tests {
		if err := c.test(sub); err != nil {
			return err
		}
	}
	return nil
}

var tagExt = map[string]string{
	"copy": "copy", "flags": "imap4flags", "create": "mailbox", "index": "index", "last": "index",
	"regex": "regex", "value": "relational", "count": "relational", "user": "subaddress", "detail": "subaddress",
	"quoteregex": "regex", "seconds": "vacation-seconds",
}

var relOps = map[string]bool{"gt": true, "ge": true, "lt": true, "le": true, "eq": true, "ne": true}

func (c *checker) args(at Pos, name string, sp spec, in []Arg) (*args, error) {
	a := &args{tags: map[string]*Arg{}, comparator: "i;ascii-casemap", match: "is", part: "all"}
	set := func(group, v string, p Pos) error {
		var cur *string
		switch group {
		case "match":
			cur = &a.match
		case "part":
			cur = &a.part
		}
		if _, dup := a.tags["#"+group]; dup {
			return errAt(p, "more than one %s for %s", group, name)
		}
		a.tags["#"+group] = nil
		*cur = v
		return nil
	}
	i := 0
	for ; i < len(in) && in[i].Kind == ArgTag; i++ {
		t := in[i]
		tag := t.Tag
		if ext, ok := tagExt[tag]; ok && !c.req[ext] {
			// :last is also editheader's addheader tag
			if !(tag == "last" && name == "addheader") {
				return nil, errAt(t.Pos, ":%s requires %q", tag, ext)
			}
		}
		needParam := func(kind ArgKind) (*Arg, error) {
			if i+1 >= len(in) || (in[i+1].Kind != kind && !(kind == ArgStringList && in[i+1].Kind == ArgString)) {
				return nil, errAt(t.Pos, ":%s needs an argument", tag)
			}
			i++
			return &in[i], nil
		}
		if _, dup := a.tags[tag]; dup {
			return nil, errAt(t.Pos, "duplicate :%s", tag)
		}
		switch {
		case sp.cmp && tag == "comparator":
			p, err := needParam(ArgString)
			if err != nil {
				return nil, err
			}
			cmp := lower(p.Strs[0])
			switch cmp {
			case "i;octet", "i;ascii-casemap":
			case "i;ascii-numeric":
				if !c.req["comparator-i;ascii-numeric"] {
					return nil, errAt(p.Pos, "comparator i;ascii-numeric requires \"comparator-i;ascii-numeric\"")
				}
			default:
				return nil, errAt(p.Pos, "unknown comparator %q", p.Strs[0])
			}
			a.comparator = cmp
			a.tags[tag] = p
		case sp.mt && (tag == "is" || tag == "contains" || tag == "matches" || tag == "regex"):
			if err := set("match", tag, t.Pos); err != nil {
				return nil, err
			}
			a.tags[tag] = nil
		case sp.mt && (tag == "value" || tag == "count"):
			if err := set("match", tag, t.Pos); err != nil {
				return nil, err
			}
			p, err := needParam(ArgString)
			if err != nil {
				return nil, err
			}
			a.rel = lower(p.Strs[0])
			if !relOps[a.rel] {
				return nil, errAt(p.Pos, "unknown relational operator %q", p.Strs[0])
			}
			a.tags[tag] = p
		case sp.addr && (tag == "all" || tag == "localpart" || tag == "domain" || tag == "user" || tag == "detail"):
			if err := set("part", tag, t.Pos); err != nil {
				return nil, err
			}
			a.tags[tag] = nil
		case sp.index && tag == "index":
			p, err := needParam(ArgNumber)
			if err != nil {
				return nil, err
			}
			if p.Num < 1 {
				return nil, errAt(p.Pos, ":index must be at least 1")
			}
			a.index = int(p.Num)
			a.tags[tag] = p
		case sp.index && tag == "last":
			a.last = true
			a.tags[tag] = nil
		case sp.zone && tag == "zone":
			p, err := needParam(ArgString)
			if err != nil {
				return nil, err
			}
			a.tags[tag] = p
		case sp.zone && tag == "originalzone" && name == "date":
			a.tags[tag] = nil
		default:
			kind, ok := sp.tags[tag]
			if !ok {
				return nil, errAt(t.Pos, "unknown tag :%s for %s", tag, name)
			}
			switch kind {
			case pNone:
				a.tags[tag] = nil
			case pNum:
				p, err := needParam(ArgNumber)
				if err != nil {
					return nil, err
				}
				a.tags[tag] = p
			case pStr:
				p, err := needParam(ArgString)
				if err != nil {
					return nil, err
				}
				a.tags[tag] = p
			case pList:
				p, err := needParam(ArgStringList)
				if err != nil {
					return nil, err
				}
				a.tags[tag] = p
			}
		}
	}
	for _, group := range sp.excl {
		n := 0
		for _, g := range group {
			if a.has(g) {
				n++
			}
		}
		if n > 1 {
			return nil, errAt(at, "%s: :%s are exclusive", name, strings.Join(group, ", :"))
		}
	}
	if a.last && !a.has("index") && name != "addheader" {
		return nil, errAt(at, ":last needs :index")
	}
	if a.has("zone") && a.has("originalzone") {
		return nil, errAt(at, ":zone and :originalzone are exclusive")
	}
	if name == "size" && !a.has("over") && !a.has("under") {
		return nil, errAt(at, "size needs :over or :under")
	}
	a.pos = in[i:]
	if len(a.pos) < sp.minPos || len(a.pos) > len(sp.pos) {
		return nil, errAt(at, "%s takes %d to %d positional arguments, found %d", name, sp.minPos, len(sp.pos), len(a.pos))
	}
	// With fewer arguments than positions, the optional ones are the first.
	kinds := sp.pos[len(sp.pos)-len(a.pos):]
	if name == "deleteheader" {
		kinds = sp.pos[:len(a.pos)]
	}
	for j, arg := range a.pos {
		switch kinds[j] {
		case 'n':
			if arg.Kind != ArgNumber {
				return nil, errAt(arg.Pos, "%s: expected a number", name)
			}
		case 's':
			if arg.Kind != ArgString {
				return nil, errAt(arg.Pos, "%s: expected a string", name)
			}
		case 'l':
			if arg.Kind != ArgString && arg.Kind != ArgStringList {
				return nil, errAt(arg.Pos, "%s: expected a string list", name)
			}
		}
	}
	if a.comparator == "i;ascii-numeric" && (a.match == "contains" || a.match == "matches" || a.match == "regex") {
		return nil, errAt(at, "i;ascii-numeric cannot be used with :%s", a.match)
	}
	keysAt := sp.keysAt
	if name == "deleteheader" && len(a.pos) < 2 {
		keysAt = -1
	}
	if a.match == "regex" && keysAt >= 0 {
		for _, k := range a.pos[keysAt].Strs {
			if c.req["variables"] && strings.Contains(k, "${") {
				a.regex = nil
				break
			}
			re, err := compileRegex(k, a.comparator)
			if err != nil {
				return nil, errAt(a.pos[keysAt].Pos, "bad regular expression %q", k)
			}
			a.regex = append(a.regex, re)
		}
	}
	if name == "date" || name == "currentdate" {
		part := lower(a.pos[len(a.pos)-2].Strs[0])
		if !strings.Contains(part, "${") && !datePart(part) {
			return nil, errAt(a.pos[len(a.pos)-2].Pos, "unknown date part %q", part)
		}
	}
	if name == "set" {
		v := a.pos[0].Strs[0]
		if !validVarName(v) {
			return nil, errAt(a.pos[0].Pos, "bad variable name %q", v)
		}
	}
	if (name == "addheader" || name == "deleteheader") && !strings.Contains(a.pos[0].Strs[0], "${") {
		if !validFieldName(a.pos[0].Strs[0]) {
			return nil, errAt(a.pos[0].Pos, "bad header field name %q", a.pos[0].Strs[0])
		}
	}
	if name == "include" && strings.ContainsAny(a.pos[0].Strs[0], "/\x00") {
		return nil, errAt(a.pos[0].Pos, "bad script name %q", a.pos[0].Strs[0])
	}
	return a, nil
}

func compileRegex(k, comparator string) (*regexp.Regexp, error) {
	if comparator == "i;ascii-casemap" {
		k = "(?i)" + k
	}
	return regexp.Compile(k)
}

func validVarName(v string) bool {
	if v == "" {
		return false
	}
	for _, part := range strings.Split(v, ".") {
		if part == "" || !isIdentStart(part[0]) {
			return false
		}
		for i := range len(part) {
			if !isIdentChar(part[i]) {
				return false
			}
		}
	}
	return true
}

func validFieldName(n string) bool {
	if n == "" {
		return false
	}
	for i := range len(n) {
		if n[i] <= ' ' || n[i] >= 127 || n[i] == ':' {
			return false
		}
	}
	return true
}
