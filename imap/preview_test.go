package imap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mailagent/mailagent/internal/mimetree"
)

const previewPlain = "Subject: plain\r\n\r\nHello   Bob,\r\n\r\n> quoted text left out\r\n>> and this\r\nsee\tyou\r\n"

const previewAlternative = "Subject: alt\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>the HTML one</p>\r\n" +
	"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe aus K=F6ln=\r\n, bis bald\r\n" +
	"--b--\r\n"

// previewHTML's body is base64 of
// "<html><head><title>T</title><style>p{}</style></head><body><script>x()</script><p>Caf&eacute; &amp; cr&egrave;me</p><div>next&nbsp;line</div></body></html>".
const previewHTML = "Subject: html\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"PGh0bWw+PGhlYWQ+PHRpdGxlPlQ8L3RpdGxlPjxzdHlsZT5we308L3N0eWxlPjwvaGVhZD48Ym9k\r\n" +
	"eT48c2NyaXB0PngoKTwvc2NyaXB0PjxwPkNhZiZlYWN1dGU7ICZhbXA7IGNyJmVncmF2ZTttZTwv\r\n" +
	"cD48ZGl2Pm5leHQmbmJzcDtsaW5lPC9kaXY+PC9ib2R5PjwvaHRtbD4=\r\n"

const previewAttachment = "Subject: pdf\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" +
	"--m\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment\r\n\r\nnot the text\r\n" +
	"--m\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--m--\r\n"

func TestPreview(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	long := strings.Repeat("abcdefghi ", 40) // 400 characters
	for _, m := range []string{previewPlain, previewAlternative, previewHTML, previewAttachment,
		"Subject: long\r\n\r\n" + long + "\r\n"} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " PREVIEW ", " PREVIEW=FUZZY", " SNIPPET=FUZZY")
	cl.ok("ENABLE UTF8=ACCEPT")
	cl.ok("SELECT INBOX")
	lines := cl.ok("FETCH 1:* (UID PREVIEW)")
	want := []string{
		`* 1 FETCH (UID 1 PREVIEW "Hello Bob, see you")`,
		`* 2 FETCH (UID 2 PREVIEW "Grüße aus Köln, bis bald")`,
		`* 3 FETCH (UID 3 PREVIEW "Café & crème next line")`,
		`* 4 FETCH (UID 4 PREVIEW "")`,
		`* 5 FETCH (UID 5 PREVIEW "` + strings.TrimSpace(long[:256]) + `")`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("FETCH PREVIEW:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Dovecot's older spellings, and LAZY of a preview already made.
	wantLine(t, cl.ok("FETCH 1 (SNIPPET (FUZZY))"), `* 1 FETCH (SNIPPET (FUZZY "Hello Bob, see you"))`)
	wantLine(t, cl.ok("FETCH 1 (PREVIEW (FUZZY))"), `* 1 FETCH (PREVIEW (FUZZY "Hello Bob, see you"))`)
	wantLine(t, cl.ok("FETCH 1 (PREVIEW (LAZY=FUZZY))"), `* 1 FETCH (PREVIEW (FUZZY "Hello Bob, see you"))`)
	wantLine(t, cl.ok("UID FETCH 2 (PREVIEW (LAZY) FLAGS)"), `* 2 FETCH (UID 2 FLAGS (\Recent) PREVIEW "Grüße aus Köln, bis bald")`)
	// Previews do not mark messages \Seen.
	wantLine(t, cl.ok("FETCH 1:2 (FLAGS)"), `* 2 FETCH (FLAGS (\Recent))`)
	cl.expect("BAD", "FETCH 1 (PREVIEW (FAST))")
	cl.expect("BAD", "FETCH 1 (PREVIEW (LAZY)")

	// Without UTF8=ACCEPT, 8-bit text comes as a literal.
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("EXAMINE INBOX")
	c2.send("x FETCH 2 PREVIEW")
	if l := c2.line(); l != "* 2 FETCH (PREVIEW {"+strconv.Itoa(len("Grüße aus Köln, bis bald"))+"}" {
		t.Fatalf("got %q", l)
	}
}

// TestPreviewCached: a preview is made once and kept in the folder's
// mailagent.cache, where a LAZY request finds it, also from another
// connection; before, LAZY answers NIL and has the preview made in the
// background.
func TestPreviewCached(t *testing.T) {
	st := newTestStack(t)
	srv, addr := st.serve(st.options())
	made := previewsMade(srv)
	st.deliver("alice@local.example", "INBOX", previewPlain)
	st.deliver("alice@local.example", "INBOX", previewHTML)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	// The structure alone is cached first; the preview is added to it.
	cl.ok("FETCH 1:2 BODYSTRUCTURE")
	wantLine(t, cl.ok("FETCH 1 (PREVIEW (LAZY))"), `* 1 FETCH (PREVIEW NIL)`)
	wantLine(t, cl.ok("FETCH 1 PREVIEW"), `* 1 FETCH (PREVIEW "Hello Bob, see you")`)
	<-made

	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	cache, err := os.ReadFile(filepath.Join(path, "mailagent.cache"))
	must(t, err)
	if !bytes.Contains(cache, []byte("Hello Bob, see you")) {
		t.Fatalf("mailagent.cache lacks the preview: %q", cache)
	}
	if bytes.Contains(cache, []byte("next line")) {
		t.Fatal("the preview of a message not asked for was made")
	}

	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("EXAMINE INBOX")
	lines := c2.ok("FETCH 1:2 (PREVIEW (LAZY))")
	wantLine(t, lines, `* 1 FETCH (PREVIEW "Hello Bob, see you")`)
	wantLine(t, lines, `* 2 FETCH (PREVIEW NIL)`)
	// BODYSTRUCTURE still comes from the record that holds the preview.
	wantLine(t, c2.ok("FETCH 1 BODYSTRUCTURE"), `* 1 FETCH (BODYSTRUCTURE ("text" "plain"`)
}

// previewsMade reports each background preview job of srv as it ends
// (its UID), from now on.
func previewsMade(srv *Server) <-chan uint32 {
	ch := make(chan uint32, previewQueueLen)
	srv.previews.mu.Lock()
	srv.previews.done = func(uid uint32, ok bool) {
		if ok {
			ch <- uid
		}
	}
	srv.previews.mu.Unlock()
	return ch
}

// TestPreviewLazyBackground follows RFC 8970 section 3.1: PREVIEW
// (LAZY) answers NIL for a preview not made yet and has the server make
// it in the background, so that a later LAZY request (this session's or
// another's) gets the text from the cache without waiting; the
// message's structure is cached with it.
func TestPreviewLazyBackground(t *testing.T) {
	st := newTestStack(t)
	srv, addr := st.serve(st.options())
	made := previewsMade(srv)
	st.deliver("alice@local.example", "INBOX", previewPlain)
	st.deliver("alice@local.example", "INBOX", previewHTML)
	st.deliver("alice@local.example", "INBOX", testMessage)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	lines := cl.ok("FETCH 1:3 (PREVIEW (LAZY))")
	for i := 1; i <= 3; i++ {
		wantLine(t, lines, fmt.Sprintf("* %d FETCH (PREVIEW NIL)", i))
	}
	got := map[uint32]bool{}
	for len(got) < 3 {
		got[<-made] = true
	}
	lines = cl.ok("FETCH 1:3 (PREVIEW (LAZY))")
	wantLine(t, lines, `* 1 FETCH (PREVIEW "Hello Bob, see you")`)
	wantLine(t, lines, `* 2 FETCH (PREVIEW {24}`)
	wantLine(t, lines, `Café & crème next line)`)
	wantLine(t, lines, `* 3 FETCH (PREVIEW "First line of the body.")`)
	noLine(t, lines, "PREVIEW NIL")

	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("EXAMINE INBOX")
	wantLine(t, c2.ok("FETCH 3 (PREVIEW (LAZY=FUZZY))"), `* 3 FETCH (PREVIEW (FUZZY "First line of the body."))`)
	wantLine(t, c2.ok("FETCH 1 BODYSTRUCTURE"), `* 1 FETCH (BODYSTRUCTURE ("text" "plain"`)
}

// TestPreviewQueueBounded: the background pool queues each message once
// and at most previewQueueLen of them; a request beyond that, or after
// Close, is dropped without blocking, and Close waits for the workers.
func TestPreviewQueueBounded(t *testing.T) {
	st := newTestStack(t)
	srv, _ := st.serve(st.options())
	md, err := st.maildirs.Open(context.Background(), mustUserPath(t, st))
	must(t, err)
	defer md.Close()
	f, err := md.Folder(context.Background(), "INBOX")
	must(t, err)
	// A queue no worker takes from: it fills.
	srv.previews.mu.Lock()
	srv.previews.jobs = make(chan previewJob, previewQueueLen)
	srv.previews.pending = map[previewJobKey]struct{}{}
	srv.previews.mu.Unlock()
	key := mailboxKey{md.Path(), "INBOX"}
	for uid := uint32(1); uid <= previewQueueLen+10; uid++ {
		srv.requestPreview(key, f, uid)
		srv.requestPreview(key, f, uid) // once only
	}
	srv.previews.mu.Lock()
	n, queued := len(srv.previews.pending), len(srv.previews.jobs)
	srv.previews.mu.Unlock()
	if n != previewQueueLen || queued > previewQueueLen {
		t.Fatalf("%d pending, %d queued; want %d", n, queued, previewQueueLen)
	}
	srv.Close()
	srv.requestPreview(key, f, 1)
}

func mustUserPath(t *testing.T, st *testStack) string {
	t.Helper()
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	return path
}

// TestPreviewHostile: a preview of hostile MIME (parts nested past the
// parser's depth cap, a text part of megabytes, invalid encodings)
// comes from bounded work and is still short, valid text.
func TestPreviewHostile(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	st.deliver("alice@local.example", "INBOX", string(mimetree.Nested(5000)))
	st.deliver("alice@local.example", "INBOX", "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		strings.Repeat("QUJD", 1<<20)+"\r\n")
	st.deliver("alice@local.example", "INBOX", "Content-Type: text/html; charset=x-unknown\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+
		"<b>bad =ZZ\x01\x02 escape</b>"+strings.Repeat("<i>", 1<<16)+"\r\n")
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("ENABLE UTF8=ACCEPT")
	cl.ok("SELECT INBOX")
	lines := cl.ok("FETCH 1:3 PREVIEW")
	if len(lines) != 3 {
		t.Fatalf("got %q", lines)
	}
	wantLine(t, lines, `* 2 FETCH (PREVIEW "`+strings.Repeat("ABC", 85)+`A")`)
	wantLine(t, lines, `* 3 FETCH (PREVIEW "bad =ZZ")`)
}

// FuzzPreview: whatever the message, its preview is valid UTF-8 of at
// most 256 characters without control characters or runs of spaces.
func FuzzPreview(f *testing.F) {
	for _, m := range []string{previewPlain, previewAlternative, previewHTML, previewAttachment, testMessage, multipartMessage} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(toCRLF(data))
		tree, err := mimetree.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		p := previewText(r, tree)
		if !utf8.ValidString(p) || utf8.RuneCountInString(p) > maxPreviewChars ||
			strings.Contains(p, "  ") || strings.TrimSpace(p) != p ||
			strings.ContainsFunc(p, unicode.IsControl) {
			t.Fatalf("preview %q", p)
		}
		cm := cachedMessage{tree: tree, preview: p, hasPreview: true}
		back, ok := decodeCachedMessage(cm.encode())
		if !ok || back.preview != p || !back.hasPreview {
			t.Fatalf("cache record of %q read back as %q %v", p, back.preview, ok)
		}
	})
}
