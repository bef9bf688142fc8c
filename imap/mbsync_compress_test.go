package imap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestInteropMbsyncCompress syncs with isync's mbsync under
// COMPRESS=DEFLATE (it asks for it when offered and ends each command
// with zlib's Z_PARTIAL_FLUSH), over STARTTLS and in plain text: a full
// sync, then an incremental one that APPENDs several messages of a few
// KiB from the client (pipelined, LITERAL+) while new server messages
// go the other way, then one with nothing to do. The messages arrive
// whole on both sides.
func TestInteropMbsyncCompress(t *testing.T) {
	mbsync := interop.Program(t, "mbsync")
	for _, tc := range []struct{ name, security string }{
		{"starttls", "SSLType STARTTLS\nCertificateFile %s"},
		{"plain", "SSLType None\nAuthMechs LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newTestStack(t)
			st.deliver("alice@local.example", "INBOX", testMessage, `\Seen`)
			st.deliver("alice@local.example", "INBOX", multipartMessage)
			opts := st.options()
			opts.AllowInsecureAuth = tc.name == "plain"
			_, addr := st.serve(opts)
			host, port, _ := strings.Cut(addr, ":")
			local := filepath.Join(t.TempDir(), "local")
			must(t, os.MkdirAll(local, 0o700))
			security := tc.security
			if strings.Contains(security, "%s") {
				security = fmt.Sprintf(security, st.certFile)
			}
			conf := mbsyncrc(t, host, port, local, security)
			run := func(what string) {
				t.Helper()
				// -Dn shows the dialog, decompressed: it proves COMPRESS on.
				out, err := exec.Command(mbsync, "-Dn", "-c", conf, "-a").CombinedOutput()
				if err != nil {
					t.Fatalf("mbsync (%s): %v\n%s", what, err, tail(out))
				}
				if !strings.Contains(string(out), "COMPRESS DEFLATE") {
					t.Fatalf("mbsync (%s) did not compress:\n%s", what, tail(out))
				}
			}
			run("full sync")
			if n := countFiles(t, filepath.Join(local, "INBOX")); n != 2 {
				t.Fatalf("full sync pulled %d messages", n)
			}

			// Client → server: APPENDs large enough for dynamic Huffman
			// blocks, into INBOX and a new folder; server → client: two
			// deliveries.
			var bodies []string
			for i := range 6 {
				var b strings.Builder
				fmt.Fprintf(&b, "From: alice@local.example\nSubject: upload %d\n\n", i)
				for j := range 60 + 10*i {
					fmt.Fprintf(&b, "line %d of upload %d, text that compresses into a dynamic block %d\n", j, i, i*j)
				}
				bodies = append(bodies, b.String())
				folder := "INBOX"
				if i%2 == 1 {
					folder = "Uploads"
				}
				for _, d := range []string{"cur", "new", "tmp"} {
					must(t, os.MkdirAll(filepath.Join(local, folder, d), 0o700))
				}
				must(t, os.WriteFile(filepath.Join(local, folder, "new", fmt.Sprintf("17000000%02d.up%d.host", i, i)), []byte(b.String()), 0o600))
			}
			st.deliver("alice@local.example", "INBOX", strings.Replace(testMessage, "Hello there", "Third", 1))
			st.deliver("alice@local.example", "INBOX", strings.Replace(testMessage, "Hello there", "Fourth", 1))
			run("incremental sync")
			if n := countFiles(t, filepath.Join(local, "INBOX")); n != 7 {
				t.Fatalf("INBOX has %d local messages after the incremental sync, want 7", n)
			}
			cl := dial(t, addr)
			if tc.name != "plain" {
				cl.startTLS()
			}
			cl.login("alice@local.example")
			wantLine(t, cl.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 7")
			wantLine(t, cl.ok("STATUS Uploads (MESSAGES)"), "MESSAGES 3")
			// Each upload stored whole: its text, CRLF line ends.
			for i, body := range bodies {
				folder := "INBOX"
				if i%2 == 1 {
					folder = "Uploads"
				}
				cl.ok("SELECT %s", folder)
				lines := cl.ok("UID SEARCH SUBJECT %q", fmt.Sprintf("upload %d", i))
				uid := strings.TrimSpace(strings.TrimPrefix(lines[0], "* SEARCH"))
				_, text, _ := strings.Cut(body, "\n\n")
				want := strings.ReplaceAll(text, "\n", "\r\n")
				wantLine(t, cl.ok("UID FETCH %s BODY.PEEK[TEXT]", uid), fmt.Sprintf("BODY[TEXT] {%d}", len(want)))
			}
			before := cl.ok(`LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))`)
			localBefore := listTree(t, local)
			run("sync with nothing to do")
			if after := cl.ok(`LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))`); strings.Join(before, "\n") != strings.Join(after, "\n") {
				t.Fatalf("server changed by an idle sync:\n%q\n%q", before, after)
			}
			if got := listTree(t, local); got != localBefore {
				t.Fatalf("local side changed by an idle sync:\n%s\n%s", localBefore, got)
			}
		})
	}
}

// tail is the end of mbsync's debug output, enough to see where it
// stopped.
func tail(out []byte) string {
	const keep = 4000
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return string(out)
}
