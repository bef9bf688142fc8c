package imap

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/internal/mimetree"
)

// bsString renders a body structure with maps in key order, so two
// structures compare by what a client would be sent.
func bsString(bs imap.BodyStructure, envs messageEnvelopes) string {
	params := func(m map[string]string) string {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%q ", k, m[k])
		}
		return b.String()
	}
	disp := func(d *imap.BodyStructureDisposition) string {
		if d == nil {
			return "nil"
		}
		return d.Value + "(" + params(d.Params) + ")"
	}
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		var b strings.Builder
		fmt.Fprintf(&b, "multipart/%s[", bs.Subtype)
		for _, c := range bs.Children {
			b.WriteString(bsString(c, envs) + ",")
		}
		if e := bs.Extended; e != nil {
			fmt.Fprintf(&b, "](%s) %s %q %q", params(e.Params), disp(e.Disposition), e.Language, e.Location)
		}
		return b.String()
	case *imap.BodyStructureSinglePart:
		s := fmt.Sprintf("%s/%s(%s) %q %q %q %d", bs.Type, bs.Subtype, params(bs.Params), bs.ID, bs.Description, bs.Encoding, bs.Size)
		if bs.Text != nil {
			s += fmt.Sprintf(" lines=%d", bs.Text.NumLines)
		}
		if m := bs.MessageRFC822; m != nil {
			s += fmt.Sprintf(" msg{%+v %s %d}", *envs[m], bsString(m.BodyStructure, envs), m.NumLines)
		}
		if e := bs.Extended; e != nil {
			s += fmt.Sprintf(" %s %q %q", disp(e.Disposition), e.Language, e.Location)
		}
		return s
	}
	return "?"
}

// structureMessages are ordinary mail shapes: the tests' messages, an
// attached message, nested alternatives, a message with LF endings.
var structureMessages = []string{
	testMessage,
	multipartMessage,
	strings.ReplaceAll(multipartMessage, "\r\n", "\n"),
	"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: a@b.example\r\n\r\nbody\r\n--x--\r\n",
	"Date: Sun, 01 Mar 2026 23:30:00 -0500\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\r\nContent-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=A3=F3d=BC\r\n",
	"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\ntwo\r\n" +
		"--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>html</p>\r\n--inner--\r\n" +
		"--outer\r\nContent-Type: application/pdf; name=\"a b.pdf\"\r\nContent-Disposition: attachment; filename=\"a b.pdf\"\r\n" +
		"Content-ID: <c1@x>\r\nContent-Description: the file\r\nContent-Language: en, fr\r\nContent-Location: http://x.example/a\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--outer--\r\nepilogue\r\n",
}

// updateGolden rewrites testdata/structure.golden.json from the parser's
// answers, after a change that is meant to change them.
var updateGolden = flag.Bool("update-structure", false, "rewrite testdata/structure.golden.json")

// TestStructureGolden: the parser's BODYSTRUCTURE and BODY[section] for
// ordinary mail are the recorded ones (first recorded from go-message's,
// what mailagent served before).
func TestStructureGolden(t *testing.T) {
	golden := map[string]string{}
	if !*updateGolden {
		b, err := os.ReadFile("testdata/structure.golden.json")
		must(t, err)
		must(t, json.Unmarshal(b, &golden))
	}
	defer func() {
		if *updateGolden {
			b, err := json.MarshalIndent(golden, "", "\t")
			must(t, err)
			must(t, os.WriteFile("testdata/structure.golden.json", append(b, '\n'), 0o644))
		}
	}()
	sections := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader},
		{Specifier: imap.PartSpecifierText},
		{Part: []int{1}},
		{Part: []int{2}},
		{Part: []int{1, 1}},
		{Part: []int{1, 2}},
		{Part: []int{2, 1}},
		{Part: []int{1}, Specifier: imap.PartSpecifierMIME},
		{Part: []int{2}, Specifier: imap.PartSpecifierMIME},
		{Part: []int{1}, Specifier: imap.PartSpecifierHeader},
		{Part: []int{1}, Specifier: imap.PartSpecifierText},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "from"}},
		{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject"}},
		{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 2, Size: 5}},
		{Part: []int{9}},
	}
	for i, m := range structureMessages {
		msg := toCRLF([]byte(m))
		tree, err := mimetree.Parse(bytes.NewReader([]byte(m)))
		if err != nil {
			t.Fatal(err)
		}
		got, want := bsString(bodyStructure(tree)), golden[fmt.Sprintf("%d BODYSTRUCTURE", i)]
		if *updateGolden {
			golden[fmt.Sprintf("%d BODYSTRUCTURE", i)] = got
		} else if got != want {
			t.Errorf("message %d BODYSTRUCTURE:\n got %s\nwant %s", i, got, want)
		}
		for j, bs := range sections {
			got, err := bodySection(bytes.NewReader(msg), tree, bs)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%d section %d", i, j)
			if *updateGolden {
				golden[key] = string(got)
				continue
			}
			want := []byte(golden[key])
			if !bytes.Equal(got, want) {
				t.Errorf("message %d BODY[%v %s %v %v]:\n got %q\nwant %q", i, bs.Part, bs.Specifier, bs.HeaderFields, bs.HeaderFieldsNot, got, want)
			}
		}
	}
}

// messageFile returns the path of alice's only INBOX message.
func messageFile(t *testing.T, st *testStack) string {
	t.Helper()
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	names, err := filepath.Glob(filepath.Join(path, "cur", "*"))
	must(t, err)
	if len(names) != 1 {
		t.Fatalf("messages %q", names)
	}
	return names[0]
}

// The 10,000- and 100,000-level messages: BODYSTRUCTURE answers at once
// with 100 levels and the rest as one leaf, deep section paths are
// bounded, and the structure is parsed once: the second FETCH is served
// from the folder's cache.
func TestFetchDeepMessage(t *testing.T) {
	for _, levels := range []int{10_000, 100_000} {
		t.Run(fmt.Sprint(levels), func(t *testing.T) {
			st := newTestStack(t)
			deep := mimetree.Nested(levels)
			st.deliver("alice@local.example", "INBOX", string(deep))
			_, addr := st.serve(st.options())
			cl := dial(t, addr)
			cl.login("alice@local.example")
			cl.ok("SELECT INBOX")
			start := time.Now()
			lines := cl.ok("FETCH 1 (BODYSTRUCTURE)")
			took := time.Since(start)
			first := strings.Join(lines, "\n")
			if n := strings.Count(first, `"mixed"`); n != mimetree.MaxDepth {
				t.Fatalf("%d multipart levels in %.200q…", n, first)
			}
			if !strings.Contains(first, `("text" "plain" NIL NIL NIL "7bit" `) || len(first) > 64<<10 {
				t.Fatalf("BODYSTRUCTURE of %d bytes: %.300q…", len(first), first)
			}
			t.Logf("first BODYSTRUCTURE of the %d-level message: %v", levels, took)

			// The leaf at the cap holds what lies below it; a part that
			// is not there is empty, and a path longer than the cap is
			// refused before any part is looked for.
			path := strings.TrimSuffix(strings.Repeat("1.", mimetree.MaxDepth), ".")
			lines = cl.ok("FETCH 1 (BODY.PEEK[%s]<0.20>)", path)
			wantLine(t, lines, fmt.Sprintf("BODY[%s]<0> {20}", path))
			wantLine(t, lines, fmt.Sprintf("--b%d", mimetree.MaxDepth))
			wantLine(t, cl.ok("FETCH 1 (BODY.PEEK[%s2])", path[:len(path)-1]), "{0}")
			cl.expect("BAD [LIMIT]", "FETCH 1 (BODY.PEEK[%s])", strings.TrimSuffix(strings.Repeat("1.", 5000), "."))

			// Rewrite the file in place with a flat message of the same
			// size and mtime: the cached structure is what comes back,
			// so the second FETCH did not parse the file.
			p := messageFile(t, st)
			fi, err := os.Stat(p)
			must(t, err)
			flat := append([]byte("Subject: flat\r\n\r\n"), bytes.Repeat([]byte("x"), len(deep)-17)...)
			must(t, os.WriteFile(p, flat, 0o600))
			must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
			if again := strings.Join(cl.ok("FETCH 1 (BODYSTRUCTURE)"), "\n"); again != first {
				t.Fatalf("second FETCH differs: %.200q…", again)
			}
			// A file changed (mtime moved) is parsed again.
			later := fi.ModTime().Add(time.Second)
			must(t, os.Chtimes(p, later, later))
			wantLine(t, cl.ok("FETCH 1 (BODYSTRUCTURE)"), `BODYSTRUCTURE ("text" "plain"`)
		})
	}
}

// BenchmarkFetchDeepBodyStructure: BODYSTRUCTURE of the 100,000-level
// message (7.5 MB) as the first FETCH does it (parse, encode for the
// cache, convert) and as every later one does (decode the cached
// structure, convert).
func BenchmarkFetchDeepBodyStructure(b *testing.B) {
	msg := mimetree.Nested(100_000)
	b.Run("parse", func(b *testing.B) {
		for range b.N {
			tree, err := mimetree.Parse(bytes.NewReader(msg))
			if err != nil {
				b.Fatal(err)
			}
			tree.Marshal()
			bodyStructure(tree)
		}
	})
	b.Run("cached", func(b *testing.B) {
		tree, _ := mimetree.Parse(bytes.NewReader(msg))
		data := tree.Marshal()
		for range b.N {
			t, err := mimetree.Unmarshal(data)
			if err != nil {
				b.Fatal(err)
			}
			bodyStructure(t)
		}
	})
}
