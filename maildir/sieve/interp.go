package sieve

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ActionKind tells what an action does.
type ActionKind int

// The actions a script decides.
const (
	ActKeep     ActionKind = iota // store in INBOX (explicit or implicit keep)
	ActFileInto                   // store in Mailbox
	ActRedirect                   // send to Address
	ActReject                     // refuse with Reason (DSN or SMTP refusal)
	ActDiscard                    // drop silently
	ActVacation                   // answer the sender, see Vacation
)

func (k ActionKind) String() string {
	return [...]string{"keep", "fileinto", "redirect", "reject", "discard", "vacation"}[k]
}

// Action is one thing the caller must do with the message.
type Action struct {
	Kind     ActionKind
	Mailbox  string   // keep (INBOX) and fileinto
	Flags    []string // keep and fileinto: IMAP flags to set on the stored copy
	Create   bool     // fileinto :create
	Copy     bool     // :copy (did not cancel the implicit keep)
	Address  string   // redirect
	Reason   string   // reject and ereject
	Extended bool     // ereject: refuse at SMTP time where possible
	Implicit bool     // the implicit keep
	Vacation *Vacation
	// Header is the message's header as edited (editheader) when the
	// action was taken; nil means unchanged.
	Header []Field
}

// Vacation holds the parameters of a vacation action (RFC 5230).
type Vacation struct {
	Reason    string
	Subject   string // empty: "Auto: " and the original subject
	From      string
	Addresses []string
	MIME      bool
	Handle    string
	Period    time.Duration
}

// Envelope is the SMTP envelope of the message being filtered.
type Envelope struct {
	From   string // reverse path, empty for <>
	To     string // the recipient whose script this is
	OrigTo string // the original recipient, if known
}

// Location says where an included script lives.
type Location int

// Script locations (RFC 6609).
const (
	Personal Location = iota
	Global
)

// Loader gives the text of a script for include.
type Loader interface {
	Load(ctx context.Context, loc Location, name string) ([]byte, error)
}

// ErrNotFound is what a Loader returns for a script that does not exist.
var ErrNotFound = errors.New("sieve: script not found")

// Mailboxes answers the mailboxexists test.
type Mailboxes interface {
	Exists(name string) bool
}

// Options configure a run.
type Options struct {
	Limits    Limits
	Loader    Loader
	Mailboxes Mailboxes
	// Location is the zone dates are shown in without :zone; nil means UTC.
	Location *time.Location
	// Separator splits :user from :detail; default "+".
	Separator string

	// now gives the current time for currentdate, time.Now if nil; the
	// package's tests set it.
	now func() time.Time
}

// Result is what a run decided.
type Result struct {
	Actions []Action
	// Header is the header after all edits; Edited tells whether any.
	Header []Field
	Edited bool
}

var (
	errStop   = errors.New("stop")
	errReturn = errors.New("return")
)

type scope struct {
	script  *Script
	vars    map[string]string
	globals map[string]bool
}

type interp struct {
	ctx      context.Context
	opts     Options
	lim      Limits
	msg      *Message
	env      Envelope
	hdr      []Field
	edited   bool
	globals  map[string]string
	match    []string
	flags    []string
	res      []Action
	cancel   bool // implicit keep cancelled
	redirs   int
	steps    int64
	work     int64 // units of matching work not yet counted as a step
	depth    int
	once     map[string]bool
	sc       *scope
	bodyDone bool
	bodyText map[string][]string
	now      time.Time
}

// Run interprets script against msg and env and returns the actions the
// caller must perform; it performs none itself. On error the returned
// Result holds the implicit keep, as a failed script must not lose mail.
func Run(ctx context.Context, s *Script, msg *Message, env Envelope, opts Options) (*Result, error) {
	in := &interp{ctx: ctx, opts: opts, lim: opts.Limits.withDefaults(), msg: msg, env: env,
		hdr: msg.Header, globals: map[string]string{}, once: map[string]bool{}}
	if opts.Separator == "" {
		in.opts.Separator = "+"
	}
	if opts.now != nil {
		in.now = opts.now()
	} else {
		in.now = time.Now()
	}
	err := in.runScript(s)
	if errors.Is(err, errStop) || errors.Is(err, errReturn) {
		err = nil
	}
	if err != nil {
		return &Result{Actions: []Action{{Kind: ActKeep, Mailbox: "INBOX", Implicit: true}}, Header: msg.Header}, err
	}
	out := &Result{Actions: in.res, Header: in.hdr, Edited: in.edited}
	if !in.cancel {
		out.Actions = append(out.Actions, Action{Kind: ActKeep, Mailbox: "INBOX", Flags: in.flags, Implicit: true, Header: in.snapshot()})
	}
	return out, nil
}

func (in *interp) runScript(s *Script) error {
	saved := in.sc
	in.sc = &scope{script: s, vars: map[string]string{}, globals: map[string]bool{}}
	defer func() { in.sc = saved }()
	return in.block(s.Commands)
}

func (in *interp) block(cmds []*Command) error {
	for _, c := range cmds {
		if err := in.command(c); err != nil {
			return err
		}
	}
	return nil
}

func (in *interp) step(p Pos) error {
	in.steps++
	if in.steps > in.lim.MaxSteps {
		return errAt(p, "script ran too long")
	}
	if in.steps%256 == 0 {
		if err := in.ctx.Err(); err != nil {
			return errAt(p, "script run stopped: %v", err)
		}
	}
	return nil
}

// maxAddedField bounds a field addheader adds, name and value
// (Pigeonhole's editheader_max_header_size), so that the fields a run
// can add, each charged its copy of the header, stay small in memory.
const maxAddedField = 2048

// workPerStep is how many units of work count as one step against
// MaxSteps: a character :matches compares, a character :regex scans
// times its expression's length / regexWorkDivisor, a byte of an
// included script parsed. One test on a long value (a 64 MiB body) or
// with a pattern built to backtrack so costs steps in proportion to what
// it does, and a run cannot spend minutes inside one step.
const workPerStep = 1024

// regexWorkDivisor scales :regex's estimate (the worst case of Go's
// matcher is the value's length times the expression's), which most
// expressions stay far below.
const regexWorkDivisor = 16

// charge counts units of work done within the current step.
func (in *interp) charge(units int64) error {
	in.work += units
	if in.work < workPerStep {
		return nil
	}
	in.steps += in.work / workPerStep
	in.work %= workPerStep
	if in.steps > in.lim.MaxSteps {
		return errAt(Pos{}, "script ran too long")
	}
	if err := in.ctx.Err(); err != nil {
		return errAt(Pos{}, "script run stopped: %v", err)
	}
	return nil
}

func (in *interp) snapshot() []Field {
	if !in.edited {
		return nil
	}
	return append([]Field(nil), in.hdr...)
}

// str expands variables in s when the script uses them.
func (in *interp) str(s string) string {
	if !in.sc.script.Require["variables"] || !strings.Contains(s, "${") {
		return s
	}
	// The result is cut at four variables' worth, and so is its
	// building: "${x}" repeated over a script of 1 MiB would otherwise
	// expand to gigabytes before the cut.
	limit := in.lim.MaxVarSize * 4
	var b strings.Builder
	for b.Len() <= limit {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 {
			b.WriteString(s)
			break
		}
		name := s[i+2 : i+2+j]
		if v, ok := in.lookup(name); ok {
			b.WriteString(s[:i])
			b.WriteString(v)
			s = s[i+3+j:]
			continue
		}
		b.WriteString(s[:i+2])
		s = s[i+2:]
	}
	out := b.String()
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (in *interp) lookup(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if name[0] >= '0' && name[0] <= '9' {
		n, err := strconv.Atoi(name)
		if err != nil {
			return "", false
		}
		if n < len(in.match) {
			return in.match[n], true
		}
		return "", true
	}
	if !validVarName(name) {
		return "", false
	}
	key := lower(name)
	if g, ok := strings.CutPrefix(key, "global."); ok {
		return in.globals[g], true
	}
	if strings.Contains(key, ".") {
		return "", true // unknown namespaces expand to nothing
	}
	if in.sc.globals[key] {
		return in.globals[key], true
	}
	return in.sc.vars[key], true
}

// maxScopeVars bounds the variables of one scope, and the globals
// (Pigeonhole's sieve_variables_max_scope_size), so that a script of
// thousands of sets cannot hold hundreds of megabytes of values.
const maxScopeVars = 255

func (in *interp) setVar(p Pos, name, v string) error {
	if len(v) > in.lim.MaxVarSize {
		v = v[:in.lim.MaxVarSize]
		for !utf8.ValidString(v) && len(v) > 0 {
			v = v[:len(v)-1]
		}
	}
	key := lower(name)
	m := in.sc.vars
	if g, ok := strings.CutPrefix(key, "global."); ok {
		key, m = g, in.globals
	} else if in.sc.globals[key] {
		m = in.globals
	}
	if _, ok := m[key]; !ok && len(m) >= maxScopeVars {
		return errAt(p, "more than %d variables", maxScopeVars)
	}
	m[key] = v
	return nil
}

func (in *interp) strs(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = in.str(s)
	}
	return out
}

func (in *interp) add(p Pos, a Action) error {
	// Identical deliveries are done once (RFC 5228 section 2.10.3).
	for i := range in.res {
		o := &in.res[i]
		if o.Kind == a.Kind && ((a.Kind == ActFileInto || a.Kind == ActKeep) && o.Mailbox == a.Mailbox ||
			a.Kind == ActRedirect && strings.EqualFold(o.Address, a.Address)) {
			// The later flags win, as in Pigeonhole.
			o.Flags = a.Flags
			o.Copy = o.Copy && a.Copy
			o.Create = o.Create || a.Create
			return nil
		}
		if o.Kind == ActKeep && a.Kind == ActFileInto && a.Mailbox == "INBOX" || o.Kind == ActFileInto && o.Mailbox == "INBOX" && a.Kind == ActKeep {
			o.Flags = a.Flags
			return nil
		}
	}
	for _, o := range in.res {
		rej := func(k ActionKind) bool { return k == ActReject }
		if rej(a.Kind) && o.Kind != ActDiscard || rej(o.Kind) && a.Kind != ActDiscard {
			return errAt(p, "reject conflicts with %s", map[bool]ActionKind{true: o.Kind, false: a.Kind}[rej(a.Kind)])
		}
		if a.Kind == ActVacation && o.Kind == ActVacation {
			return errAt(p, "more than one vacation")
		}
	}
	if len(in.res) >= in.lim.MaxActions {
		return errAt(p, "too many actions")
	}
	if a.Kind == ActRedirect {
		in.redirs++
		if in.redirs > in.lim.MaxRedirects {
			return errAt(p, "too many redirects")
		}
	}
	in.res = append(in.res, a)
	return nil
}

func mergeFlags(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, f := range b {
		if !hasFlag(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func hasFlag(list []string, f string) bool {
	for _, g := range list {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

// parseFlags splits flag strings on spaces and drops duplicates (RFC 5232).
func parseFlags(ss []string) []string {
	var out []string
	for _, s := range ss {
		for _, f := range strings.Fields(s) {
			if !hasFlag(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func (in *interp) command(c *Command) error {
	if err := in.step(c.Pos); err != nil {
		return err
	}
	a := c.a
	switch c.Name {
	case "require":
	case "if", "elsif", "else":
		ok := true
		if c.Test != nil {
			var err error
			if ok, err = in.test(c.Test); err != nil {
				return err
			}
		}
		if ok {
			return in.block(c.Block)
		}
		if c.Else != nil {
			return in.command(c.Else)
		}
	case "stop":
		return errStop
	case "return":
		return errReturn
	case "keep":
		in.cancel = true
		return in.add(c.Pos, Action{Kind: ActKeep, Mailbox: "INBOX", Flags: in.actFlags(a), Header: in.snapshot()})
	case "discard":
		in.cancel = true
		return in.add(c.Pos, Action{Kind: ActDiscard})
	case "fileinto":
		mb := in.str(a.pos[0].Strs[0])
		if !utf8.ValidString(mb) || mb == "" {
			return errAt(c.Pos, "bad mailbox name")
		}
		if !a.has("copy") {
			in.cancel = true
		}
		return in.add(c.Pos, Action{Kind: ActFileInto, Mailbox: mb, Flags: in.actFlags(a), Copy: a.has("copy"), Create: a.has("create"), Header: in.snapshot()})
	case "redirect":
		to := in.str(a.pos[0].Strs[0])
		list, err := (&mailParser).ParseList(to)
		if err != nil || len(list) != 1 {
			return errAt(a.pos[0].Pos, "redirect: bad address %q", to)
		}
		if !a.has("copy") {
			in.cancel = true
		}
		return in.add(c.Pos, Action{Kind: ActRedirect, Address: list[0].Address, Copy: a.has("copy"), Header: in.snapshot()})
	case "reject", "ereject":
		in.cancel = true
		return in.add(c.Pos, Action{Kind: ActReject, Reason: in.str(a.pos[0].Strs[0]), Extended: c.Name == "ereject"})
	case "setflag", "addflag", "removeflag":
		list := parseFlags(in.strs(a.pos[len(a.pos)-1].Strs))
		var cur []string
		if len(a.pos) == 2 {
			v, _ := in.lookup(in.str(a.pos[0].Strs[0]))
			cur = parseFlags([]string{v})
		} else {
			cur = in.flags
		}
		switch c.Name {
		case "setflag":
			cur = list
		case "addflag":
			cur = mergeFlags(cur, list)
		case "removeflag":
			var keep []string
			for _, f := range cur {
				if !hasFlag(list, f) {
					keep = append(keep, f)
				}
			}
			cur = keep
		}
		if len(a.pos) == 2 {
			name := in.str(a.pos[0].Strs[0])
			if !validVarName(name) {
				return errAt(a.pos[0].Pos, "bad variable name %q", name)
			}
			if err := in.setVar(a.pos[0].Pos, name, strings.Join(cur, " ")); err != nil {
				return err
			}
		} else {
			in.flags = cur
		}
	case "set":
		return in.setVar(c.Pos, a.pos[0].Strs[0], modify(a, in.str(a.pos[1].Strs[0])))
	case "vacation":
		return in.vacation(c)
	case "addheader":
		name := in.str(a.pos[0].Strs[0])
		value := in.str(a.pos[1].Strs[0])
		if !validFieldName(name) {
			return errAt(c.Pos, "addheader: bad field name %q", name)
		}
		if protected(name) {
			return nil
		}
		if len(name)+len(value) > maxAddedField {
			return errAt(c.Pos, "addheader: field longer than %d bytes", maxAddedField)
		}
		// The header is copied whole: work in proportion to its fields.
		if err := in.charge(int64(len(in.hdr)*64 + len(value))); err != nil {
			return err
		}
		f := Field{Name: name, Value: " " + encodeValue(value)}
		hdr := make([]Field, 0, len(in.hdr)+1)
		if a.has("last") {
			hdr = append(append(hdr, in.hdr...), f)
		} else {
			hdr = append(append(hdr, f), in.hdr...)
		}
		in.hdr, in.edited = hdr, true
	case "deleteheader":
		return in.deleteHeader(a)
	case "include":
		return in.include(c)
	case "global":
		for _, n := range in.strs(a.pos[0].Strs) {
			if !validVarName(n) {
				return errAt(a.pos[0].Pos, "bad variable name %q", n)
			}
			in.sc.globals[lower(n)] = true
		}
	default:
		return errAt(c.Pos, "command %s not implemented", c.Name)
	}
	return nil
}

func (in *interp) actFlags(a *args) []string {
	if p, ok := a.tags["flags"]; ok {
		return parseFlags(in.strs(p.Strs))
	}
	if in.sc.script.Require["imap4flags"] {
		return append([]string(nil), in.flags...)
	}
	return nil
}

func protected(name string) bool {
	return strings.EqualFold(name, "received") || strings.EqualFold(name, "auto-submitted")
}

// encodeValue makes a field value of text: encoded words where it is not
// ASCII.
func encodeValue(v string) string {
	v = strings.NewReplacer("\r", "", "\n", "").Replace(v)
	for i := range len(v) {
		if v[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", v)
		}
	}
	return v
}

func (in *interp) deleteHeader(a *args) error {
	name := in.str(a.pos[0].Strs[0])
	if protected(name) {
		return nil
	}
	var keys []string
	if len(a.pos) > 1 {
		keys = in.strs(a.pos[1].Strs)
	}
	var idx []int
	for i, f := range in.hdr {
		if strings.EqualFold(f.Name, name) {
			idx = append(idx, i)
		}
	}
	if a.index > 0 {
		k := a.index - 1
		if a.last {
			k = len(idx) - a.index
		}
		if k < 0 || k >= len(idx) {
			return nil
		}
		idx = idx[k : k+1]
	}
	drop := map[int]bool{}
	for _, i := range idx {
		if keys != nil {
			ok, err := in.matchValues(a, []string{decodeValue(in.hdr[i].Value)}, keys)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		drop[i] = true
	}
	if len(drop) == 0 {
		return nil
	}
	hdr := make([]Field, 0, len(in.hdr))
	for i, f := range in.hdr {
		if !drop[i] {
			hdr = append(hdr, f)
		}
	}
	in.hdr, in.edited = hdr, true
	return nil
}

func (in *interp) include(c *Command) error {
	a := c.a
	name := in.str(a.pos[0].Strs[0])
	loc := Personal
	if a.has("global") {
		loc = Global
	}
	key := fmt.Sprint(loc, "/", name)
	if a.has("once") && in.once[key] {
		return nil
	}
	in.once[key] = true
	if in.depth >= in.lim.MaxIncludes {
		return errAt(c.Pos, "includes nested too deep")
	}
	if in.opts.Loader == nil {
		if a.has("optional") {
			return nil
		}
		return errAt(c.Pos, "include: no scripts to include from")
	}
	src, err := in.opts.Loader.Load(in.ctx, loc, name)
	if errors.Is(err, ErrNotFound) && a.has("optional") {
		return nil
	}
	if err != nil {
		return errAt(c.Pos, "include %q: %v", name, err)
	}
	if err := in.charge(int64(len(src))); err != nil {
		return err
	}
	s, err := Parse(src, in.lim)
	if err != nil {
		return errAt(c.Pos, "include %q: %v", name, err)
	}
	in.depth++
	defer func() { in.depth-- }()
	err = in.runScript(s)
	if errors.Is(err, errReturn) {
		return nil
	}
	return err
}

func modify(a *args, v string) string {
	switch {
	case a.has("lower"):
		v = lowerASCII(v)
	case a.has("upper"):
		v = strings.ToUpper(v)
	}
	switch {
	case a.has("lowerfirst") && v != "":
		r, n := utf8.DecodeRuneInString(v)
		v = strings.ToLower(string(r)) + v[n:]
	case a.has("upperfirst") && v != "":
		r, n := utf8.DecodeRuneInString(v)
		v = strings.ToUpper(string(r)) + v[n:]
	}
	if a.has("quotewildcard") {
		v = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`).Replace(v)
	}
	if a.has("quoteregex") {
		v = quoteRegex(v)
	}
	if a.has("length") {
		v = strconv.Itoa(utf8.RuneCountInString(v))
	}
	return v
}

func quoteRegex(v string) string {
	var b strings.Builder
	for _, r := range v {
		if strings.ContainsRune(`\.+*?()[]{}|^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func lowerASCII(s string) string { return strings.ToLower(s) }

func (in *interp) vacation(c *Command) error {
	a := c.a
	v := &Vacation{Reason: in.str(a.pos[0].Strs[0]), MIME: a.has("mime"), Period: 7 * 24 * time.Hour}
	if p, ok := a.tags["days"]; ok {
		v.Period = time.Duration(p.Num) * 24 * time.Hour
	}
	if p, ok := a.tags["seconds"]; ok {
		v.Period = time.Duration(p.Num) * time.Second
	}
	if v.Period < 24*time.Hour {
		v.Period = 24 * time.Hour // Pigeonhole's sieve_vacation_min_period
	}
	if s, ok := a.str("subject"); ok {
		v.Subject = in.str(s)
	}
	if s, ok := a.str("from"); ok {
		v.From = in.str(s)
		if _, err := mailParser.Parse(v.From); err != nil {
			return errAt(c.Pos, "vacation: bad :from address")
		}
	}
	if p, ok := a.tags["addresses"]; ok {
		v.Addresses = in.strs(p.Strs)
	}
	if s, ok := a.str("handle"); ok {
		v.Handle = in.str(s)
	} else {
		// Pigeonhole's default handle (of the arguments as written, before
		// variables are expanded), so its memory carries over.
		sub, _ := a.str("subject")
		from, _ := a.str("from")
		m := "<NO-MIME>"
		if sub == "" {
			sub = "<default-subject>"
		}
		if from == "" {
			from = "<default-from>"
		}
		if v.MIME {
			m = "<MIME>"
		}
		v.Handle = a.pos[0].Strs[0] + sub + from + m
	}
	return in.add(c.Pos, Action{Kind: ActVacation, Vacation: v})
}
