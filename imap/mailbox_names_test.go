package imap

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// cmdLiteral sends a command whose line ends with a synchronizing
// literal announcement ("{n}"): the literal follows only if the server
// asks for it. It returns the tagged reply.
func (cl *client) cmdLiteral(line, literal, rest string) string {
	cl.t.Helper()
	cl.ntag++
	tag := "lit" + strconv.Itoa(cl.ntag)
	cl.send(tag + " " + line)
	for {
		l := cl.line()
		if strings.HasPrefix(l, "+") {
			cl.send(literal + rest)
			_, st := cl.until(tag)
			return st
		}
		if st, ok := strings.CutPrefix(l, tag+" "); ok {
			return st
		}
	}
}

// TestBadMailboxNames sends every kind of bad mailbox name to every
// command that takes one, and checks the tagged status and response
// code, that the connection stays usable, and that nothing appears
// outside the user's Maildir.
func TestBadMailboxNames(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	st.deliver("bob@local.example", "INBOX", testMessage)
	mailRoot := filepath.Join(st.dir, "mail")
	before := tree(t, mailRoot)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")

	// Names that cannot name a folder: the store refuses them
	// (maildir.NameError) and every command answers NO [CANNOT].
	cannot := []string{
		`".."`, `"../bob"`, `"a..b"`, `".hidden"`, `"a/b"`, `"/etc"`, `"a\\b"`,
		`"~root"`, `"~"`, `"#news.comp"`, `"#shared"`, `"a*b"`, `"a%b"`,
		"&AAA-",        // NUL, correctly encoded
		"a&AB8-b",      // U+001F, correctly encoded
		"\"a\u0085b\"", // C1 control as raw UTF-8
		"\"Cafe\u0301\"",
	}
	// Names go-imap's decoder refuses before the session sees them.
	// The right answer is BAD (not modified UTF-7) or, for a control
	// character in a quoted string, NO [CANNOT].
	undecodable := []string{
		"&Jjo",       // unterminated base64 run
		"&AGE-",      // "a" encoded, which must be written as itself
		"&Jjo-&AGE-", // two adjacent runs
		"&ZeVnLIqe",  // unterminated
		"&A-",        // six bits, not a UTF-16 unit
		"&2D0-",      // lone high surrogate
		"\"a\x01b\"", "\"a\x7fb\"", "\"a\tb\"",
	}
	type cmd struct {
		format   string
		selected bool
		list     bool
	}
	cmds := []cmd{
		{format: "CREATE %s"},
		{format: "DELETE %s"},
		{format: "RENAME %s Renamed"},
		{format: "RENAME INBOX %s"},
		{format: "SELECT %s"},
		{format: "EXAMINE %s"},
		{format: "STATUS %s (MESSAGES UIDNEXT)"},
		{format: "SUBSCRIBE %s"},
		{format: "UNSUBSCRIBE %s"},
		{format: "APPEND %s"},
		{format: "COPY 1 %s", selected: true},
		{format: "UID COPY 1 %s", selected: true},
		{format: "MOVE 1 %s", selected: true},
		{format: "UID MOVE 1 %s", selected: true},
		{format: `LIST "" %s`, list: true},
		{format: `LIST %s "*"`, list: true},
		{format: `LSUB "" %s`, list: true},
	}
	run := func(c cmd, name string) string {
		t.Helper()
		if c.selected {
			cl.ok("SELECT INBOX")
		}
		line := strings.Replace(c.format, "%s", name, 1)
		if strings.HasPrefix(c.format, "APPEND") {
			return cl.cmdLiteral(line+" {10}", "Subject: x", "")
		}
		_, reply := cl.cmd("%s", line)
		return reply
	}
	for _, name := range cannot {
		for _, c := range cmds {
			reply := run(c, name)
			want := "NO [CANNOT] Invalid mailbox name: "
			if c.list {
				// A pattern matching nothing lists nothing.
				want = "OK"
			}
			if !strings.HasPrefix(reply, want) {
				t.Errorf("%s: %q, want %s", strings.Replace(c.format, "%s", name, 1), reply, want)
			}
			cl.ok("NOOP")
		}
	}
	// Names that are not valid modified UTF-7: well-formed arguments,
	// so NO [CANNOT] (RFC 9051 section 7.1), and a LIST pattern that
	// matches nothing, for every command.
	for _, name := range undecodable {
		for _, c := range cmds {
			reply := run(c, name)
			want := "NO [CANNOT] Invalid mailbox name: not valid modified UTF-7"
			if c.list {
				want = "OK"
			}
			if !strings.HasPrefix(reply, want) {
				t.Errorf("%s: %q, want %s", strings.Replace(c.format, "%s", name, 1), reply, want)
			}
			cl.ok("NOOP")
		}
	}
	// NUL is in no string's syntax (RFC 9051 section 9, CHAR8): BAD.
	for _, c := range cmds {
		if reply := run(c, "\"a\x00b\""); !strings.HasPrefix(reply, "BAD [CLIENTBUG] Mailbox name holds NUL") {
			t.Errorf("%s with NUL: %q, want BAD [CLIENTBUG]", c.format, reply)
		}
		cl.ok("NOOP")
	}

	// "&-" is "&": a valid name, stored as Dovecot stores it.
	cl.ok("CREATE a&-b")
	wantLine(t, cl.ok(`LIST "" "a&-b"`), `"a&-b"`)
	cl.ok("SELECT a&-b")
	cl.ok("SELECT INBOX")
	cl.ok("COPY 1 a&-b")
	wantLine(t, cl.ok("STATUS a&-b (MESSAGES)"), "MESSAGES 1")
	if _, err := os.Stat(filepath.Join(mailRoot, "local.example/alice/Maildir/.a&-b")); err != nil {
		t.Fatal(err)
	}

	// Nothing was written anywhere but inside alice's Maildir.
	for _, p := range tree(t, mailRoot) {
		if slices.Contains(before, p) {
			continue
		}
		if !strings.HasPrefix(p, "local.example/alice/Maildir/") {
			t.Errorf("created outside alice's Maildir: %s", p)
			continue
		}
		if strings.Contains(p, "bob") || strings.Contains(p, "root") || strings.Contains(p, "etc") || strings.Contains(p, "news") {
			t.Errorf("created from a refused name: %s", p)
		}
	}
}

// tree lists the paths below root, relative to it.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	must(t, err)
	return out
}
