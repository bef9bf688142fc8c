package imap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// BenchmarkVersusDovecot times the same client work against this server
// and against Dovecot serving a copy of the same Maildir, in the same
// run: LOGIN+SELECT, UID FETCH 1:* (FLAGS UID RFC822.SIZE), and every
// body (UID FETCH 1:* BODY.PEEK[]). MAILAGENT_BENCH_MESSAGES sets the
// INBOX size (default 20,000 messages of 10 KB). It needs Dovecot's IMAP
// server (see package dovecottest for when it skips).
func BenchmarkVersusDovecot(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("MAILAGENT_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	st := newTestStack(b)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(b, err)
	fillMaildir(b, path, n, 10240)
	ctx := context.Background()
	md, err := st.maildirs.Open(ctx, path)
	must(b, err)
	f, err := md.Folder(ctx, "INBOX")
	must(b, err)
	snap, err := f.Snapshot(ctx) // assigns the UIDs, writes dovecot-uidlist
	must(b, err)
	md.Close()
	if len(snap.Messages) != n {
		b.Fatalf("%d messages in INBOX", len(snap.Messages))
	}
	opts := st.options()
	_, ours := st.serve(opts)
	dove := startDovecot(b, path)

	// One warm-up round each: both build their indexes.
	for _, addr := range []string{ours, dove} {
		imapWork(b, addr, n)
	}
	var sum [2][3]time.Duration
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The servers take turns, in alternating order.
		for k := range 2 {
			j := (i + k) % 2
			r := imapWork(b, []string{ours, dove}[j], n)
			for k := range r.d {
				sum[j][k] += r.d[k]
			}
			bytes = r.bytes
		}
	}
	b.StopTimer()
	names := []string{"login-select", "fetch-flags", "fetch-bodies"}
	for k, name := range names {
		o, d := sum[0][k]/time.Duration(b.N), sum[1][k]/time.Duration(b.N)
		b.ReportMetric(float64(o.Microseconds())/1000, name+"-ms")
		b.ReportMetric(float64(d.Microseconds())/1000, name+"-dovecot-ms")
		b.ReportMetric(float64(o)/float64(d), name+"-ratio")
	}
	mb := float64(bytes) / 1e6
	b.ReportMetric(mb/(sum[0][2]/time.Duration(b.N)).Seconds(), "bodies-MB/s")
	b.ReportMetric(mb/(sum[1][2]/time.Duration(b.N)).Seconds(), "bodies-dovecot-MB/s")
}

// fillMaildir writes n messages of about size bytes into the Maildir's
// cur/ as an MDA would, every other one \Seen.
func fillMaildir(b *testing.B, path string, n, size int) {
	for _, d := range []string{"cur", "new", "tmp"} {
		must(b, os.MkdirAll(filepath.Join(path, d), 0o700))
	}
	line := strings.Repeat("0123456789abcdefghij", 3) + "klmnopqrstuvwxyz!?\r\n"
	base := time.Now().Add(-time.Hour).Unix()
	for i := 0; i < n; i++ {
		var sb strings.Builder
		fmt.Fprintf(&sb, "From: Sender %d <sender%d@far.example>\r\nTo: alice@local.example\r\nSubject: Message %d\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <%d@far.example>\r\n\r\n", i, i, i, i)
		for sb.Len()+len(line) <= size {
			sb.WriteString(line)
		}
		msg := sb.String()
		flags := ""
		if i%2 == 0 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%06dP%dQ%d.bench,S=%d,W=%d:2,%s", base+int64(i/1000), i%1000, os.Getpid(), i, len(msg), len(msg), flags)
		must(b, os.WriteFile(filepath.Join(path, "cur", name), []byte(msg), 0o600))
	}
}

// startDovecot runs Dovecot on a copy of the Maildir at src, on a free
// loopback port, until the benchmark ends.
func startDovecot(b *testing.B, src string) string {
	root := b.TempDir()
	home := filepath.Join(root, "home")
	must(b, os.MkdirAll(home, 0o755))
	if out, err := exec.Command("cp", "-a", src, filepath.Join(home, "Maildir")).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	os.Remove(filepath.Join(home, "Maildir", "mailagent.index"))
	d := dovecottest.Start(b, dovecottest.Options{
		Root:      root,
		Protocols: []string{"imap"},
		Users:     map[string]string{"alice@local.example": testPassword},
		Home:      home,
	})
	d.ChownTree(b, home)
	return d.IMAP
}

type workResult struct {
	d     [3]time.Duration
	bytes int64
}

// imapWork runs the timed client work against addr over a raw
// connection, reading literals by their announced size.
func imapWork(b *testing.B, addr string, n int) workResult {
	var r workResult
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	must(b, err)
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	run := func(tag, cmd string) (lines int, bytes int64) {
		if cmd != "" {
			fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				b.Fatalf("%s: %v", addr, err)
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					b.Fatalf("%s: %s", addr, l)
				}
				return lines, bytes
			}
			lines++
			if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
				size, err := strconv.ParseInt(l[i+1:len(l)-3], 10, 64)
				if err != nil {
					b.Fatalf("%s: literal in %q", addr, l)
				}
				if _, err := io.CopyN(io.Discard, br, size); err != nil {
					b.Fatal(err)
				}
				bytes += size
			}
		}
	}
	run("*", "") // greeting: read up to the first line
	run("a", fmt.Sprintf("LOGIN alice@local.example %q", testPassword))
	run("b", "SELECT INBOX")
	r.d[0] = time.Since(start)
	start = time.Now()
	if lines, _ := run("c", "UID FETCH 1:* (FLAGS UID RFC822.SIZE)"); lines < n {
		b.Fatalf("%s: %d FETCH lines", addr, lines)
	}
	r.d[1] = time.Since(start)
	start = time.Now()
	_, r.bytes = run("d", "UID FETCH 1:* BODY.PEEK[]")
	r.d[2] = time.Since(start)
	run("e", "LOGOUT")
	return r
}
