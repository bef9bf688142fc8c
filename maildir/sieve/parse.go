package sieve

import "strings"

// ArgKind tells what an argument is.
type ArgKind int

// The kinds of argument (RFC 5228 section 2.6).
const (
	ArgTag ArgKind = iota
	ArgNumber
	ArgString     // a single string
	ArgStringList // a bracketed list
)

// Arg is one argument of a command or test.
type Arg struct {
	Pos  Pos
	Kind ArgKind
	Tag  string   // for ArgTag, lower case, without ':'
	Num  int64    // for ArgNumber
	Strs []string // for ArgString (one) and ArgStringList
}

// Test is a test with its arguments and nested tests (allof, anyof, not).
type Test struct {
	Pos   Pos
	Name  string
	Args  []Arg
	Tests []*Test

	a *args // validated arguments
}

// Command is a command with its arguments, test and block. An "if" keeps
// its "elsif"/"else" chain in Else.
type Command struct {
	Pos   Pos
	Name  string
	Args  []Arg
	Test  *Test
	Block []*Command
	Else  *Command

	a *args
}

// Script is a parsed and validated script.
type Script struct {
	Commands []*Command
	Require  map[string]bool
}

// Limits bound what a script may be and do. Zero fields take the defaults.
type Limits struct {
	MaxScriptSize int   // bytes of script text; default 1 MiB
	MaxNesting    int   // nested blocks and tests; default 32
	MaxActions    int   // actions per run; default 32 (Pigeonhole's sieve_max_actions)
	MaxRedirects  int   // redirects per run; default 4 (Pigeonhole's sieve_max_redirects)
	MaxSteps      int64 // commands and tests evaluated per run; default 100000
	MaxIncludes   int   // nested include depth; default 10
	MaxVarSize    int   // bytes of a variable's value; default 4096
}

func (l Limits) withDefaults() Limits {
	if l.MaxScriptSize <= 0 {
		l.MaxScriptSize = 1 << 20
	}
	if l.MaxNesting <= 0 {
		l.MaxNesting = 32
	}
	if l.MaxActions <= 0 {
		l.MaxActions = 32
	}
	if l.MaxRedirects <= 0 {
		l.MaxRedirects = 4
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = 100000
	}
	if l.MaxIncludes <= 0 {
		l.MaxIncludes = 10
	}
	if l.MaxVarSize <= 0 {
		l.MaxVarSize = 4096
	}
	return l
}

type parser struct {
	lx     *lexer
	tok    token
	peeked bool
	limits Limits
	depth  int
}

func (p *parser) peek() (token, error) {
	if !p.peeked {
		t, err := p.lx.next()
		if err != nil {
			return t, err
		}
		p.tok, p.peeked = t, true
	}
	return p.tok, nil
}

func (p *parser) take() (token, error) {
	t, err := p.peek()
	p.peeked = false
	return t, err
}

func (p *parser) expect(punct string) (token, error) {
	t, err := p.take()
	if err != nil {
		return t, err
	}
	if t.kind != tPunct || t.text != punct {
		return t, errAt(t.pos, "expected %q, found %s", punct, describe(t))
	}
	return t, nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of script"
	case tIdent:
		return "identifier " + t.text
	case tTag:
		return "tag :" + t.text
	case tNumber:
		return "number"
	case tString:
		return "string"
	}
	return "'" + t.text + "'"
}

// Parse parses and validates a script: syntax, "require" against the
// supported extensions, and each command's and test's arguments.
func Parse(src []byte, limits Limits) (*Script, error) {
	limits = limits.withDefaults()
	if len(src) > limits.MaxScriptSize {
		return nil, &Error{Msg: "script too large"}
	}
	p := &parser{lx: &lexer{src: string(src), line: 1, col: 1}, limits: limits}
	cmds, err := p.commands(false)
	if err != nil {
		return nil, err
	}
	s := &Script{Commands: cmds, Require: map[string]bool{}}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (p *parser) commands(inBlock bool) ([]*Command, error) {
	var out []*Command
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		if t.kind == tEOF {
			if inBlock {
				return nil, errAt(t.pos, "missing '}'")
			}
			return out, nil
		}
		if t.kind == tPunct && t.text == "}" && inBlock {
			return out, nil
		}
		c, err := p.command()
		if err != nil {
			return nil, err
		}
		switch c.Name {
		case "elsif", "else":
			var last *Command
			if len(out) > 0 {
				last = out[len(out)-1]
			}
			for last != nil && last.Else != nil {
				last = last.Else
			}
			if last == nil || (last.Name != "if" && last.Name != "elsif") {
				return nil, errAt(c.Pos, "%s without if", c.Name)
			}
			last.Else = c
		default:
			out = append(out, c)
		}
	}
}

func (p *parser) command() (*Command, error) {
	t, err := p.take()
	if err != nil {
		return nil, err
	}
	if t.kind != tIdent {
		return nil, errAt(t.pos, "expected a command, found %s", describe(t))
	}
	c := &Command{Pos: t.pos, Name: t.text}
	if c.Args, err = p.arguments(); err != nil {
		return nil, err
	}
	n, err := p.peek()
	if err != nil {
		return nil, err
	}
	if n.kind == tIdent || (n.kind == tPunct && n.text == "(") {
		if c.Test, err = p.test(); err != nil {
			return nil, err
		}
		n, err = p.peek()
		if err != nil {
			return nil, err
		}
	}
	if n.kind == tPunct && n.text == "{" {
		p.take()
		p.depth++
		if p.depth > p.limits.MaxNesting {
			return nil, errAt(n.pos, "blocks nested too deep")
		}
		if c.Block, err = p.commands(true); err != nil {
			return nil, err
		}
		p.depth--
		if _, err := p.expect("}"); err != nil {
			return nil, err
		}
		if c.Block == nil {
			c.Block = []*Command{}
		}
		return c, nil
	}
	if _, err := p.expect(";"); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) arguments() ([]Arg, error) {
	var out []Arg
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		switch {
		case t.kind == tTag:
			p.take()
			out = append(out, Arg{Pos: t.pos, Kind: ArgTag, Tag: t.text})
		case t.kind == tNumber:
			p.take()
			out = append(out, Arg{Pos: t.pos, Kind: ArgNumber, Num: t.num})
		case t.kind == tString:
			p.take()
			out = append(out, Arg{Pos: t.pos, Kind: ArgString, Strs: []string{t.text}})
		case t.kind == tPunct && t.text == "[":
			p.take()
			a := Arg{Pos: t.pos, Kind: ArgStringList, Strs: []string{}}
			for {
				s, err := p.take()
				if err != nil {
					return nil, err
				}
				if s.kind != tString {
					return nil, errAt(s.pos, "expected a string in the list, found %s", describe(s))
				}
				a.Strs = append(a.Strs, s.text)
				e, err := p.take()
				if err != nil {
					return nil, err
				}
				if e.kind == tPunct && e.text == "]" {
					break
				}
				if e.kind != tPunct || e.text != "," {
					return nil, errAt(e.pos, "expected ',' or ']', found %s", describe(e))
				}
			}
			out = append(out, a)
		default:
			return out, nil
		}
	}
}

func (p *parser) test() (*Test, error) {
	t, err := p.take()
	if err != nil {
		return nil, err
	}
	if t.kind != tIdent {
		return nil, errAt(t.pos, "expected a test, found %s", describe(t))
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > p.limits.MaxNesting {
		return nil, errAt(t.pos, "tests nested too deep")
	}
	x := &Test{Pos: t.pos, Name: t.text}
	if x.Args, err = p.arguments(); err != nil {
		return nil, err
	}
	n, err := p.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case n.kind == tPunct && n.text == "(":
		p.take()
		for {
			sub, err := p.test()
			if err != nil {
				return nil, err
			}
			x.Tests = append(x.Tests, sub)
			e, err := p.take()
			if err != nil {
				return nil, err
			}
			if e.kind == tPunct && e.text == ")" {
				break
			}
			if e.kind != tPunct || e.text != "," {
				return nil, errAt(e.pos, "expected ',' or ')', found %s", describe(e))
			}
		}
	case n.kind == tIdent:
		sub, err := p.test()
		if err != nil {
			return nil, err
		}
		x.Tests = []*Test{sub}
	}
	return x, nil
}

// lower is strings.ToLower for ASCII, as Sieve's names are.
func lower(s string) string { return strings.ToLower(s) }
