package imapwire

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// testReader reads commands from in, counting continuation requests.
type testReader struct {
	*Reader
	conts int
}

func newTestReader(in string) *testReader {
	tr := &testReader{}
	tr.Reader = NewReader(bufio.NewReader(strings.NewReader(in)), func() error { tr.conts++; return nil })
	return tr
}

// one parses in, which must hold one command, and returns it.
func one(t *testing.T, in string) *Command {
	t.Helper()
	r := newTestReader(in)
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatalf("%q: %v", in, err)
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("%q: after the command: %v, want EOF", in, err)
	}
	return cmd
}

// refused parses in and returns the *Error of its first command.
func refused(t *testing.T, r *testReader) *Error {
	t.Helper()
	_, err := r.ReadCommand()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error", err)
	}
	return e
}

func TestCommands(t *testing.T) {
	d := time.Date(2024, 3, 7, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want Command
	}{
		{"a NOOP\r\n", Command{Tag: "a", Name: "NOOP"}},
		{"a1 capability\r\n", Command{Tag: "a1", Name: "CAPABILITY"}},
		{"a LOGIN alice \"pa\\\"ss\"\r\n", Command{Tag: "a", Name: "LOGIN", Args: &Login{"alice", "pa\"ss"}}},
		{"a LOGIN {5}\r\nalice {2}\r\npw\r\n", Command{Tag: "a", Name: "LOGIN", Args: &Login{"alice", "pw"}}},
		{"a AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n", Command{Tag: "a", Name: "AUTHENTICATE",
			Args: &Authenticate{Mechanism: "PLAIN", InitialResponse: []byte("\x00alice\x00pw"), HasInitial: true}}},
		{"a AUTHENTICATE plain =\r\n", Command{Tag: "a", Name: "AUTHENTICATE",
			Args: &Authenticate{Mechanism: "PLAIN", InitialResponse: []byte{}, HasInitial: true}}},
		{"a ENABLE utf8=accept CONDSTORE\r\n", Command{Tag: "a", Name: "ENABLE", Args: &Enable{[]string{"UTF8=ACCEPT", "CONDSTORE"}}}},
		{"a ID (\"name\" \"neomutt\" \"version\" NIL)\r\n", Command{Tag: "a", Name: "ID",
			Args: &ID{[][2]string{{"name", "neomutt"}, {"version", ""}}}}},
		{"a ID NIL\r\n", Command{Tag: "a", Name: "ID", Args: &ID{}}},
		{"a COMPRESS deflate\r\n", Command{Tag: "a", Name: "COMPRESS", Args: &Compress{"DEFLATE"}}},
		{"a SELECT inbox\r\n", Command{Tag: "a", Name: "SELECT", Args: &Select{Mailbox: "INBOX"}}},
		{"a EXAMINE \"Sent\" (CONDSTORE)\r\n", Command{Tag: "a", Name: "EXAMINE", Args: &Select{Mailbox: "Sent", ReadOnly: true, CondStore: true}}},
		{"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n", Command{Tag: "a", Name: "SELECT",
			Args: &Select{Mailbox: "INBOX", QResync: &QResync{UIDValidity: 67890007, ModSeq: 20050715194045000,
				KnownUIDs: imap.UIDSet{{Start: 41, Stop: 41}, {Start: 43, Stop: 211}, {Start: 214, Stop: 541}}}}}},
		{"a SELECT INBOX (QRESYNC (1 2 1:10 (1:3 5:7)))\r\n", Command{Tag: "a", Name: "SELECT",
			Args: &Select{Mailbox: "INBOX", QResync: &QResync{UIDValidity: 1, ModSeq: 2,
				KnownUIDs: imap.UIDSet{{Start: 1, Stop: 10}},
				SeqMatch:  &SeqMatch{Seqs: imap.SeqSet{{Start: 1, Stop: 3}}, UIDs: imap.UIDSet{{Start: 5, Stop: 7}}}}}}},
		{"a SELECT INBOX (QRESYNC (1 2 (1 5)))\r\n", Command{Tag: "a", Name: "SELECT",
			Args: &Select{Mailbox: "INBOX", QResync: &QResync{UIDValidity: 1, ModSeq: 2,
				SeqMatch: &SeqMatch{Seqs: imap.SeqSet{{Start: 1, Stop: 1}}, UIDs: imap.UIDSet{{Start: 5, Stop: 5}}}}}}},
		{"a CREATE Archive (USE (\\Archive))\r\n", Command{Tag: "a", Name: "CREATE", Args: &Create{Mailbox: "Archive", SpecialUse: []imap.MailboxAttr{"\\Archive"}}}},
		{"a DELETE &AMQ-rger\r\n", Command{Tag: "a", Name: "DELETE", Args: &Mailbox{"Ärger"}}},
		{"a RENAME a b\r\n", Command{Tag: "a", Name: "RENAME", Args: &Rename{"a", "b"}}},
		{"a LIST \"\" *\r\n", Command{Tag: "a", Name: "LIST", Args: &List{Patterns: []string{"*"}}}},
		{"a LSUB \"\" %\r\n", Command{Tag: "a", Name: "LSUB", Args: &List{Lsub: true, Patterns: []string{"%"}}}},
		{"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Sent*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n", Command{Tag: "a", Name: "LIST",
			Args: &List{Patterns: []string{"INBOX", "Sent*"}, Extended: true, Options: imap.ListOptions{
				SelectSubscribed: true, SelectRecursiveMatch: true, ReturnChildren: true,
				ReturnStatus: &imap.StatusOptions{NumMessages: true, Size: true}}}}},
		{"a STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)\r\n", Command{Tag: "a", Name: "STATUS",
			Args: &Status{Mailbox: "INBOX", Items: imap.StatusOptions{NumMessages: true, UIDNext: true, HighestModSeq: true}}}},
		{"a UID EXPUNGE 3:5\r\n", Command{Tag: "a", Name: "EXPUNGE", UID: true, Args: &Expunge{imap.UIDSet{{Start: 3, Stop: 5}}}}},
		{"a uid copy 1:* Trash\r\n", Command{Tag: "a", Name: "COPY", UID: true, Args: &Copy{Set: imap.UIDSet{{Start: 1, Stop: 0}}, Mailbox: "Trash"}}},
		{"a MOVE $ Trash\r\n", Command{Tag: "a", Name: "MOVE", Args: &Copy{Set: imap.SearchRes(), Mailbox: "Trash"}}},
		{"a STORE 1 +FLAGS.SILENT (\\seen $Junk)\r\n", Command{Tag: "a", Name: "STORE",
			Args: &Store{Set: imap.SeqSet{{Start: 1, Stop: 1}}, Flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "$Junk"}}}}},
		{"a STORE 1 (UNCHANGEDSINCE 12) -FLAGS \\Deleted \\Flagged\r\n", Command{Tag: "a", Name: "STORE",
			Args: &Store{Set: imap.SeqSet{{Start: 1, Stop: 1}}, UnchangedSince: 12, HasUnchangedSince: true,
				Flags: imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagDeleted, imap.FlagFlagged}}}}},
		// Dovecot's client sends a flag list with a leading space.
		{"a STORE 1 FLAGS ( Project_X)\r\n", Command{Tag: "a", Name: "STORE",
			Args: &Store{Set: imap.SeqSet{{Start: 1, Stop: 1}}, Flags: imap.StoreFlags{Flags: []imap.Flag{"Project_X"}}}}},
		{"a GETQUOTAROOT INBOX\r\n", Command{Tag: "a", Name: "GETQUOTAROOT", Args: &Mailbox{"INBOX"}}},
		{"a GETQUOTA \"\"\r\n", Command{Tag: "a", Name: "GETQUOTA", Args: &QuotaRoot{""}}},
		{"a SETQUOTA \"\" (STORAGE 512)\r\n", Command{Tag: "a", Name: "SETQUOTA", Args: &SetQuota{Limits: []QuotaLimit{{"STORAGE", 512}}}}},
		{"a SEARCH UNSEEN SINCE 7-Mar-2024\r\n", Command{Tag: "a", Name: "SEARCH",
			Args: &Search{Criteria: &SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Since: d}}}},
		{"a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM x (TO y) NOT 2:4\r\n", Command{Tag: "a", Name: "SEARCH", UID: true,
			Args: &Search{ESearch: true, Return: imap.SearchOptions{ReturnMin: true, ReturnCount: true}, Charset: "UTF-8",
				Criteria: &SearchCriteria{
					Or:  [][2]SearchCriteria{{{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "x"}}}, {Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "y"}}}}},
					Not: []SearchCriteria{{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 4}}}}}}}}},
		{"a SEARCH RETURN () ON \"7-Mar-2024\" MODSEQ 5\r\n", Command{Tag: "a", Name: "SEARCH",
			Args: &Search{ESearch: true, Return: imap.SearchOptions{ReturnAll: true},
				Criteria: &SearchCriteria{Since: d, Before: d.AddDate(0, 0, 1), ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 5}}}}},
		{"a UID SEARCH SAVEDON 7-Mar-2024 SMALLER 9 SINCE 7-Mar-2024\r\n", Command{Tag: "a", Name: "SEARCH", UID: true,
			Args: &Search{Criteria: &SearchCriteria{SavedSince: d, SavedBefore: d.AddDate(0, 0, 1), SaveDateKnown: true, Smaller: 9, Since: d}}}},
		{"a UID SORT (REVERSE DATE SUBJECT) UTF-8 ALL\r\n", Command{Tag: "a", Name: "SORT", UID: true,
			Args: &Sort{Keys: []SortKey{{"DATE", true}, {"SUBJECT", false}}, Charset: "UTF-8", Criteria: &SearchCriteria{}}}},
		{"a THREAD REFERENCES US-ASCII $\r\n", Command{Tag: "a", Name: "THREAD",
			Args: &Thread{Algorithm: "REFERENCES", Charset: "US-ASCII", Criteria: &SearchCriteria{UID: []imap.UIDSet{imap.SearchRes()}}}}},
		{"a CANCELUPDATE \"x1\" \"x2\"\r\n", Command{Tag: "a", Name: "CANCELUPDATE", Args: &CancelUpdate{[]string{"x1", "x2"}}}},
		{"\r\n\r\na NOOP\n", Command{Tag: "a", Name: "NOOP"}},
	}
	for _, c := range cases {
		got := one(t, c.in)
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%q:\n got %#v\nwant %#v", c.in, got.Args, c.want.Args)
		}
	}
}

func TestFetchItems(t *testing.T) {
	cases := []struct {
		in   string
		want Fetch
	}{
		{"a FETCH 1:* FAST\r\n", Fetch{Set: imap.SeqSet{{Start: 1}}, Options: imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true}}},
		{"a FETCH 1 full\r\n", Fetch{Set: imap.SeqSet{{Start: 1, Stop: 1}}, Options: imap.FetchOptions{Flags: true, InternalDate: true,
			RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{}}}},
		{"a UID FETCH 5 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n", Fetch{Set: imap.UIDSet{{Start: 5, Stop: 5}},
			Options: imap.FetchOptions{UID: true, Flags: true, ChangedSince: 12345}, HasChangedSince: true, Vanished: true}},
		{"a FETCH 2 (BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100> BODY[1.2.MIME] BODY[TEXT] RFC822 BINARY.PEEK[1]<5.6> BINARY.SIZE[] MODSEQ SAVEDATE EMAILID PREVIEW (LAZY))\r\n",
			Fetch{Set: imap.SeqSet{{Start: 2, Stop: 2}}, RFC822: true, SaveDate: true, EmailID: true, Preview: true, PreviewLazy: true,
				Options: imap.FetchOptions{ModSeq: true,
					BodySection: []*imap.FetchItemBodySection{
						{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "To"}, Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 100}},
						{Specifier: imap.PartSpecifierMIME, Part: []int{1, 2}},
						{Specifier: imap.PartSpecifierText},
					},
					BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true, Partial: &imap.SectionPartial{Offset: 5, Size: 6}}},
					BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{}}},
				}}},
		{"a FETCH 3 (BODY BODY[2] PREVIEW)\r\n", Fetch{Set: imap.SeqSet{{Start: 3, Stop: 3}}, Preview: true, Options: imap.FetchOptions{
			BodyStructure: &imap.FetchItemBodyStructure{}, BodySection: []*imap.FetchItemBodySection{{Part: []int{2}}}}}},
		{"a FETCH 4 (SNIPPET (FUZZY) UID)\r\n", Fetch{Set: imap.SeqSet{{Start: 4, Stop: 4}}, Preview: true, PreviewFuzzy: true, Snippet: true, UIDItem: true,
			Options: imap.FetchOptions{UID: true}}},
		{"a FETCH 5 (PREVIEW (lazy=fuzzy))\r\n", Fetch{Set: imap.SeqSet{{Start: 5, Stop: 5}}, Preview: true, PreviewLazy: true, PreviewFuzzy: true}},
	}
	for _, c := range cases {
		got := one(t, c.in)
		if f, ok := got.Args.(*Fetch); !ok || !reflect.DeepEqual(*f, c.want) {
			t.Errorf("%q:\n got %#v\nwant %#v", c.in, got.Args, c.want)
		}
	}
}

// TestRefusedAndSkipped: a refused command is answered BAD with its tag,
// the rest of it is skipped (its non-synchronizing literals too, no
// continuation for a synchronizing one), and the next command is read.
func TestRefusedAndSkipped(t *testing.T) {
	cases := []struct {
		in, code string
		conts    int
	}{
		{"a FOO bar\r\n", "", 0},
		{"a SELECT\r\n", "", 0},
		{"a SEARCH FUZZY x {3+}\r\nb N\r\n", "CLIENTBUG", 0},
		{"a SEARCH SINCE 2024-03-07 {3}\r\n", "CLIENTBUG", 0},
		{"a SELECT {4}\r\n&Jjo LIST\r\n", "", 1},
		{"a STORE 1 FLAGS (\\Seen\r\n", "", 0},
		{"a FETCH 1 (BODY[HEADER.FIELDS ()])\r\n", "", 0},
		{"a UID NOOP\r\n", "", 0},
		{"+ NOOP\r\n", "", 0},
	}
	for _, c := range cases {
		r := newTestReader(c.in + "z NOOP\r\n")
		e := refused(t, r)
		if e.Type != imap.StatusResponseTypeBad || string(e.Code) != c.code || e.Close {
			t.Errorf("%q: got %+v, want BAD [%s]", c.in, e, c.code)
		}
		if e.Tag != "a" && c.in[0] == 'a' {
			t.Errorf("%q: tag %q", c.in, e.Tag)
		}
		cmd, err := r.ReadCommand()
		if err != nil || cmd.Tag != "z" || cmd.Name != "NOOP" {
			t.Errorf("%q: next command: %+v %v", c.in, cmd, err)
		}
		if r.conts != c.conts {
			t.Errorf("%q: %d continuation requests, want %d", c.in, r.conts, c.conts)
		}
	}
}

// TestUndecodableMailboxNames: a name that is not valid modified UTF-7
// is a well-formed argument, read and marked Undecodable (the command
// answers NO, not BAD), in every argument that is a name or a pattern.
func TestUndecodableMailboxNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		name func(*Command) string
	}{
		{"a SELECT &Jjo\r\n", func(c *Command) string { return c.Args.(*Select).Mailbox }},
		{"a SELECT {4}\r\n&Jjo\r\n", func(c *Command) string { return c.Args.(*Select).Mailbox }},
		{"a CREATE &AGE-\r\n", func(c *Command) string { return c.Args.(*Create).Mailbox }},                // ASCII encoded
		{"a CREATE &ZeVnLIqe-&ZeVnLIqe-\r\n", func(c *Command) string { return c.Args.(*Create).Mailbox }}, // two runs in a row
		{"a CREATE &2D0-\r\n", func(c *Command) string { return c.Args.(*Create).Mailbox }},                // a lone surrogate
		{"a RENAME INBOX !#$&'+,-.\r\n", func(c *Command) string { return c.Args.(*Rename).To }},
		{"a LIST \"\" !#$&'+,-.%*\r\n", func(c *Command) string { return c.Args.(*List).Patterns[0] }},
	} {
		r := newTestReader(c.in)
		cmd, err := r.ReadCommand()
		if err != nil || !Undecodable(c.name(cmd)) {
			t.Errorf("%q: %+v %v, want an undecodable name", c.in, cmd, err)
		}
	}
	r := newTestReader("a SELECT &AMQ-rger\r\n")
	if cmd, err := r.ReadCommand(); err != nil || Undecodable(cmd.Args.(*Select).Mailbox) {
		t.Errorf("a valid name: %+v %v", cmd, err)
	}
}

// TestUTF8Mailboxes: after UTF8=ACCEPT a name is UTF-8 and "&" is
// itself; before it, modified UTF-7.
func TestUTF8Mailboxes(t *testing.T) {
	r := newTestReader("a SELECT \"Ärger & Co\"\r\nb SELECT \"&AMQ-rger &- Co\"\r\nc CREATE \"bad\x01\"\r\n")
	r.UTF8 = true
	for _, want := range []string{"Ärger & Co", "&AMQ-rger &- Co"} {
		cmd, err := r.ReadCommand()
		if err != nil || cmd.Args.(*Select).Mailbox != want {
			t.Fatalf("got %+v %v, want %q", cmd, err, want)
		}
	}
	if cmd, err := r.ReadCommand(); err != nil || !Undecodable(cmd.Args.(*Create).Mailbox) {
		t.Fatalf("control character: %+v %v", cmd, err)
	}
	r = newTestReader("a SELECT \"&AMQ-rger &- Co\"\r\n")
	if cmd, err := r.ReadCommand(); err != nil || cmd.Args.(*Select).Mailbox != "Ärger & Co" {
		t.Fatalf("modified UTF-7: %+v %v", cmd, err)
	}
}

// TestLiteralLimits: synchronizing literals over a limit are answered NO
// [TOOBIG] without a continuation request; non-synchronizing ones end
// the connection (LITERAL-), or are taken under LITERAL+.
func TestLiteralLimits(t *testing.T) {
	r := newTestReader("a LOGIN {5000}\r\nz NOOP\r\n")
	if e := refused(t, r); e.Type != imap.StatusResponseTypeNo || e.Code != imap.ResponseCodeTooBig || e.Close || r.conts != 0 {
		t.Fatalf("sync literal: %+v, %d continuations", e, r.conts)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Name != "NOOP" {
		t.Fatalf("after a refused literal: %+v %v", cmd, err)
	}
	r = newTestReader("a LOGIN {5000+}\r\n")
	if e := refused(t, r); e.Code != imap.ResponseCodeTooBig || !e.Close {
		t.Fatalf("non-sync literal over 4096: %+v", e)
	}
	// Together over MaxLiterals: the sixteenth literal of 4096 bytes is
	// one too many for 64 KiB... with its continuation not sent.
	var b strings.Builder
	b.WriteString("a SEARCH")
	for range 17 {
		b.WriteString(" TEXT {4096}\r\n" + strings.Repeat("x", 4096))
	}
	b.WriteString("\r\n")
	r = newTestReader(b.String())
	if e := refused(t, r); e.Type != imap.StatusResponseTypeNo || e.Code != imap.ResponseCodeTooBig || r.conts != 16 {
		t.Fatalf("literals in total: %+v after %d continuations", e, r.conts)
	}
	// APPEND: APPENDLIMIT for the message.
	r = newTestReader("a APPEND INBOX {101}\r\n")
	r.Limits.AppendLimit = 100
	if e := refused(t, r); e.Type != imap.StatusResponseTypeNo || e.Code != imap.ResponseCodeTooBig || r.conts != 0 {
		t.Fatalf("APPEND over the limit: %+v", e)
	}
	r = newTestReader("a APPEND INBOX {4294967296}\r\n")
	if e := refused(t, r); e.Type != imap.StatusResponseTypeNo || e.Code != imap.ResponseCodeTooBig {
		t.Fatalf("APPEND over 32 bits: %+v", e)
	}
	// LITERAL+: a non-synchronizing message within APPENDLIMIT.
	msg := strings.Repeat("y", 5000)
	r = newTestReader("a APPEND INBOX {5000+}\r\n" + msg + "\r\n")
	r.Limits.LiteralPlus = true
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cmd.Args.(*Append).Message.Body)
	if string(body) != msg || r.conts != 0 {
		t.Fatalf("LITERAL+ message: %d bytes, %d continuations", len(body), r.conts)
	}
	if m, err := r.NextMessage(); m != nil || err != nil {
		t.Fatalf("end of APPEND: %v %v", m, err)
	}
}

// TestLineLimit: a command over MaxLine outside its literals ends the
// connection with BAD [TOOBIG], counted over its lines.
func TestLineLimit(t *testing.T) {
	r := newTestReader("a NOOP " + strings.Repeat("x", 60<<10) + "\r\n")
	if e := refused(t, r); e.Code != imap.ResponseCodeTooBig || !e.Close {
		t.Fatalf("long line: %+v", e)
	}
	half := strings.Repeat("x", 30<<10)
	r = newTestReader("a SEARCH SUBJECT " + half + " TEXT {1+}\r\ny SUBJECT " + half + "\r\n")
	if e := refused(t, r); e.Code != imap.ResponseCodeTooBig || !e.Close {
		t.Fatalf("long lines in total: %+v", e)
	}
}

// TestSearchDepth: 64 levels of nesting are taken, 65 are BAD [LIMIT],
// and the stack does not grow with the input.
func TestSearchDepth(t *testing.T) {
	ok := "a SEARCH " + strings.Repeat("NOT ", 63) + "(ALL)\r\n"
	if cmd := one(t, ok); cmd.Name != "SEARCH" {
		t.Fatal(cmd)
	}
	for _, q := range []string{strings.Repeat("(", 40000), strings.Repeat("NOT ", 10000) + "ALL", strings.Repeat("OR ALL ", 5000) + "ALL"} {
		r := newTestReader("a SEARCH " + q + "\r\nz NOOP\r\n")
		if e := refused(t, r); e.Code != imap.ResponseCodeLimit || e.Close {
			t.Fatalf("deep search: %+v", e)
		}
		if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "z" {
			t.Fatalf("after a deep search: %+v %v", cmd, err)
		}
	}
}

func TestSetRanges(t *testing.T) {
	r := newTestReader("a FETCH " + strings.Repeat("1,", 10000) + "2 FLAGS\r\nz NOOP\r\n")
	if e := refused(t, r); e.Code != imap.ResponseCodeLimit {
		t.Fatalf("long set: %+v", e)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "z" {
		t.Fatalf("after a long set: %+v %v", cmd, err)
	}
}

// TestMultiAppendCatenate reads MULTIAPPEND's messages and CATENATE's
// parts in order, leaving unread bodies to be drained.
func TestMultiAppendCatenate(t *testing.T) {
	in := "a APPEND Drafts (\\Seen) \" 7-Mar-2024 10:11:12 +0100\" {3}\r\none (\\Draft) CATENATE (URL \"/INBOX;UID=1\" TEXT {4}\r\ntwo!) ~{5}\r\nthree\r\nz NOOP\r\n"
	r := newTestReader(in)
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	a := cmd.Args.(*Append)
	m := a.Message
	if a.Mailbox != "Drafts" || !reflect.DeepEqual(m.Flags, []imap.Flag{imap.FlagSeen}) ||
		!m.Date.Equal(time.Date(2024, 3, 7, 9, 11, 12, 0, time.UTC)) || m.Size != 3 {
		t.Fatalf("first message: %+v", m)
	}
	if b, _ := io.ReadAll(m.Body); string(b) != "one" {
		t.Fatalf("first body %q", b)
	}
	m, err = r.NextMessage()
	if err != nil || !m.Catenate || !reflect.DeepEqual(m.Flags, []imap.Flag{imap.FlagDraft}) {
		t.Fatalf("second message: %+v %v", m, err)
	}
	p, err := r.NextPart()
	if err != nil || p.URL != "/INBOX;UID=1" {
		t.Fatalf("URL part: %+v %v", p, err)
	}
	p, err = r.NextPart()
	if err != nil || p.Size != 4 {
		t.Fatalf("TEXT part: %+v %v", p, err)
	}
	// Its body left unread: NextPart drains it.
	if p, err = r.NextPart(); p != nil || err != nil {
		t.Fatalf("end of parts: %+v %v", p, err)
	}
	m, err = r.NextMessage()
	if err != nil || !m.Binary || m.Size != 5 {
		t.Fatalf("third message: %+v %v", m, err)
	}
	// Left unread: the next command drains it.
	cmd, err = r.ReadCommand()
	if err != nil || cmd.Tag != "z" {
		t.Fatalf("next command: %+v %v", cmd, err)
	}
	if r.conts != 3 {
		t.Fatalf("%d continuation requests, want 3", r.conts)
	}
}

func TestIdleAndSASL(t *testing.T) {
	r := newTestReader("done\r\nDONX\r\n*\r\nAGE=\r\n\r\n")
	if err := r.ReadIdleDone(); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadIdleDone(); err != ErrIdleNotDone {
		t.Fatal(err)
	}
	if _, cancelled, err := r.ReadSASLResponse(); !cancelled || err != nil {
		t.Fatal(cancelled, err)
	}
	if b, _, err := r.ReadSASLResponse(); string(b) != "\x00a" || err != nil {
		t.Fatalf("%q %v", b, err)
	}
	if b, _, err := r.ReadSASLResponse(); len(b) != 0 || err != nil {
		t.Fatalf("%q %v", b, err)
	}
}

func TestMUTF7(t *testing.T) {
	for _, name := range []string{"INBOX", "Ärger & Co", "日本語", "a&b", "😀 emoji", "~peter/mail/台北/日本語"} {
		enc := EncodeMUTF7(name)
		dec, err := DecodeMUTF7(enc)
		if err != nil || dec != name {
			t.Errorf("%q → %q → %q %v", name, enc, dec, err)
		}
	}
	if got := EncodeMUTF7("~peter/mail/台北/日本語"); got != "~peter/mail/&U,BTFw-/&ZeVnLIqe-" {
		t.Errorf("RFC 3501's example: %q", got)
	}
	for _, bad := range []string{"&", "&U,BTFw", "&AGE-", "&2D0-", "&ZeVnLIqe-&ZeVnLIqe-", "&U,BTF-", "a\x00"} {
		if _, err := DecodeMUTF7(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestReadNotify(t *testing.T) {
	if got := one(t, "a NOTIFY SET status (mailboxes Box2 (MessageExpunge))\r\n").Args.(*Notify); !got.Status || len(got.Groups) != 1 || got.Groups[0].Mailboxes[0] != "Box2" {
		t.Errorf("SET STATUS (RFC 5465 section 8): %+v", got)
	}
	got := one(t, "a NOTIFY SET (STATUS) (selected-delayed (MessageNew (UID PREVIEW) messageexpunge)) (subtree (INBOX Work) (MessageNew MessageExpunge FlagChange)) (mailboxes Lists NONE) (personal (MailboxName))\r\n")
	n, ok := got.Args.(*Notify)
	want := &Notify{Status: true, Groups: []NotifyGroup{
		{Filter: "SELECTED-DELAYED", Events: []NotifyEvent{{Name: "MESSAGENEW", Fetch: &Fetch{Options: imap.FetchOptions{UID: true}, UIDItem: true, Preview: true}}, {Name: "MESSAGEEXPUNGE"}}},
		{Filter: "SUBTREE", Mailboxes: []string{"INBOX", "Work"}, Events: []NotifyEvent{{Name: "MESSAGENEW"}, {Name: "MESSAGEEXPUNGE"}, {Name: "FLAGCHANGE"}}},
		{Filter: "MAILBOXES", Mailboxes: []string{"Lists"}},
		{Filter: "PERSONAL", Events: []NotifyEvent{{Name: "MAILBOXNAME"}}},
	}}
	if !ok || !reflect.DeepEqual(n, want) {
		t.Fatalf("got %#v\nwant %#v", got.Args, want)
	}
	if n := one(t, "a NOTIFY none\r\n").Args.(*Notify); !n.None {
		t.Fatalf("got %#v", n)
	}
	// A first group whose filter starts like STATUS is not (STATUS).
	if n := one(t, "a NOTIFY SET (subscribed (MessageNew MessageExpunge))\r\n").Args.(*Notify); n.Status || n.Groups[0].Filter != "SUBSCRIBED" {
		t.Fatalf("got %#v", n)
	}
	for _, in := range []string{
		"a NOTIFY\r\n", "a NOTIFY SET\r\n", "a NOTIFY SET ()\r\n", "a NOTIFY SET (personal)\r\n",
		"a NOTIFY SET (personal ())\r\n", "a NOTIFY SET (mailboxes () (MessageNew))\r\n",
		"a NOTIFY SET (STATUS)\r\n", "a NOTIFY SET (others (MessageNew))\r\n",
		"a NOTIFY SET " + strings.Repeat("(personal NONE) ", 64) + "(personal NONE)\r\n",
	} {
		r := NewReader(bufio.NewReader(strings.NewReader(in)), func() error { return nil })
		var e *Error
		if _, err := r.ReadCommand(); !errors.As(err, &e) || e.Type != imap.StatusResponseTypeBad {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestReadContextReturn(t *testing.T) {
	s := one(t, "a SEARCH RETURN (UPDATE CONTEXT PARTIAL -1:-50 COUNT) SEEN\r\n").Args.(*Search)
	if !s.Context.Update || !s.Context.Context || *s.Context.Partial != (PartialRange{First: 1, Last: 50, FromEnd: true}) || !s.Return.ReturnCount {
		t.Fatalf("got %#v %#v", s.Context, s.Context.Partial)
	}
	if s.Context.Partial.String() != "-1:-50" {
		t.Fatalf("got %q", s.Context.Partial.String())
	}
	o := one(t, "a SORT RETURN (PARTIAL 9:3) (DATE) UTF-8 ALL\r\n").Args.(*Sort)
	if *o.Context.Partial != (PartialRange{First: 3, Last: 9}) || o.Context.Update {
		t.Fatalf("got %#v", o.Context)
	}
	if c := one(t, "a CANCELUPDATE \"a1\" \"b2\"\r\n").Args.(*CancelUpdate); !reflect.DeepEqual(c.Tags, []string{"a1", "b2"}) {
		t.Fatalf("got %#v", c)
	}
}

// TestNothingReadAfterClose: once a line or literal is refused with
// Close set, no read takes the bytes that follow it, whatever reads
// next (a command, a SASL response, IDLE's DONE, an APPEND's next
// message): they would be taken for a command.
func TestNothingReadAfterClose(t *testing.T) {
	tail := "x1 CREATE smuggled\r\n"
	r := newTestReader("a NOOP " + strings.Repeat("x", 60<<10) + "\r\n" + tail)
	if e := refused(t, r); !e.Close {
		t.Fatalf("long line: %+v", e)
	}
	if cmd, err := r.ReadCommand(); cmd != nil || !errors.Is(err, ErrRefused) {
		t.Fatalf("command after a refused line: %+v %v", cmd, err)
	}
	r = newTestReader(strings.Repeat("A", 51201) + tail)
	if _, _, err := r.ReadSASLResponse(); err == nil {
		t.Fatal("over-long SASL response taken")
	} else if e := new(Error); !errors.As(err, &e) || !e.Close || e.Code != imap.ResponseCodeTooBig {
		t.Fatalf("over-long SASL response: %v", err)
	}
	if cmd, err := r.ReadCommand(); cmd != nil || !errors.Is(err, ErrRefused) {
		t.Fatalf("command after an over-long SASL response: %+v %v", cmd, err)
	}
	if _, _, err := r.ReadSASLResponse(); !errors.Is(err, ErrRefused) {
		t.Fatalf("SASL response after an over-long one: %v", err)
	}
	if err := r.ReadIdleDone(); !errors.Is(err, ErrRefused) {
		t.Fatalf("DONE after an over-long SASL response: %v", err)
	}
	if m, err := r.NextMessage(); m != nil || !errors.Is(err, ErrRefused) {
		t.Fatalf("message after an over-long SASL response: %v %v", m, err)
	}
}

// TestCheckBeforeArguments: a command Check refuses is answered with
// its tag and its error, its literals skipped unread and uninvited: no
// continuation request for a synchronizing one, a non-synchronizing one
// read past; the next command is read as usual.
func TestCheckBeforeArguments(t *testing.T) {
	r := newTestReader("a1 LOGIN {5}\r\nb1 SELECT {5+}\r\nINBOX\r\nc1 NOOP\r\nd1 UID FETCH 1 FLAGS\r\n")
	var seen []string
	r.Check = func(name string, uid bool) *Error {
		seen = append(seen, name)
		switch {
		case name == "LOGIN":
			return &Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "Use TLS"}
		case name == "SELECT", uid:
			return &Error{Type: imap.StatusResponseTypeBad, Text: "Log in first"}
		}
		return nil
	}
	if e := refused(t, r); e.Tag != "a1" || e.Code != imap.ResponseCodePrivacyRequired || e.Close || r.conts != 0 {
		t.Fatalf("LOGIN: %+v, %d continuation requests", e, r.conts)
	}
	if e := refused(t, r); e.Tag != "b1" || e.Text != "Log in first" || e.Close {
		t.Fatalf("SELECT: %+v", e)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "c1" {
		t.Fatalf("after the refused commands: %+v %v", cmd, err)
	}
	if e := refused(t, r); e.Tag != "d1" {
		t.Fatalf("UID FETCH: %+v", e)
	}
	if want := []string{"LOGIN", "SELECT", "NOOP", "FETCH"}; !reflect.DeepEqual(seen, want) || r.conts != 0 {
		t.Fatalf("Check saw %q, want %q; %d continuation requests", seen, want, r.conts)
	}
}

// TestMultiAppendLimits: a MULTIAPPEND's messages are counted (BAD
// [LIMIT] past MaxAppendMessages) and their bytes added up, CATENATE's
// TEXT and URL parts included (NO [TOOBIG] past MaxAppendTotal, before
// the continuation request).
func TestMultiAppendLimits(t *testing.T) {
	read := func(in string, urlPart int64) (*testReader, error) {
		r := newTestReader(in)
		r.Limits = Limits{AppendLimit: 10, MaxAppendTotal: 25, MaxAppendMessages: 3}
		cmd, err := r.ReadCommand()
		if err != nil {
			return r, err
		}
		m := cmd.Args.(*Append).Message
		for m != nil {
			if m.Catenate {
				for {
					p, err := r.NextPart()
					if err != nil {
						return r, err
					}
					if p == nil {
						break
					}
					if p.URL != "" {
						if err := r.CountURLPart(urlPart); err != nil {
							return r, err
						}
					}
				}
			}
			if m, err = r.NextMessage(); err != nil {
				return r, err
			}
		}
		return r, nil
	}
	for _, c := range []struct {
		in    string
		url   int64
		code  imap.ResponseCode
		conts int
	}{
		{"a APPEND X {8}\r\n12345678 {8}\r\n12345678 {8}\r\n12345678\r\n", 0, "", 3},
		{"a APPEND X {8}\r\n12345678 {8}\r\n12345678 {8}\r\n12345678 {1}\r\n", 0, imap.ResponseCodeLimit, 3},
		{"a APPEND X {9}\r\n123456789 {9}\r\n123456789 {9}\r\n", 0, imap.ResponseCodeTooBig, 2},
		{"a APPEND X {9+}\r\n123456789 {9+}\r\n123456789 CATENATE (TEXT {8}\r\n", 0, imap.ResponseCodeTooBig, 0},
		{"a APPEND X {9+}\r\n123456789 {9+}\r\n123456789 CATENATE (URL a)\r\n", 8, imap.ResponseCodeTooBig, 0},
	} {
		r, err := read(c.in, c.url)
		var e *Error
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.code != "" && (!errors.As(err, &e) || e.Code != c.code):
			t.Errorf("%q: got %v, want [%s]", c.in, err, c.code)
		case c.code == imap.ResponseCodeTooBig && e.Text != "Messages of one APPEND too large together":
			t.Errorf("%q: %v", c.in, err)
		case r.conts != c.conts:
			t.Errorf("%q: %d continuation requests, want %d", c.in, r.conts, c.conts)
		}
	}
}
