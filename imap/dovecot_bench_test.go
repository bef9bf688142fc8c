package imap

import (
	"bufio"
	"context"
	"flag"
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
// run (see benchRows for the rows). It runs on INBOXes of 20,000 and
// 100,000 messages of 10 KB (sub-benchmarks messages=20000 and
// messages=100000); the 100,000 one runs only when the -bench pattern
// names it or MAILAGENT_BENCH_100K=1, since filling it writes 2 GB.
// MAILAGENT_BENCH_MESSAGES=N runs one size N instead. It needs
// Dovecot's IMAP server (see package dovecottest for when it skips).
func BenchmarkVersusDovecot(b *testing.B) {
	sizes := []int{20000, 100000}
	if v, err := strconv.Atoi(os.Getenv("MAILAGENT_BENCH_MESSAGES")); err == nil && v > 0 {
		sizes = []int{v}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			if n >= 100000 && len(sizes) > 1 && os.Getenv("MAILAGENT_BENCH_100K") != "1" && !benchNamed(strconv.Itoa(n)) {
				b.Skipf("%d messages: name them in -bench (messages=%d) or set MAILAGENT_BENCH_100K=1", n, n)
			}
			versusDovecot(b, n)
		})
	}
}

// benchNamed reports whether the -bench pattern names s explicitly.
func benchNamed(s string) bool {
	f := flag.Lookup("test.bench")
	return f != nil && strings.Contains(f.Value.String(), s)
}

// benchRows are the timed steps of imapWork, in order. The flag STORE
// row is the mean of one STORE of one flag on each of changedMessages
// messages; CHANGEDSINCE asks for the flags changed since the modseq
// before those STOREs (changedMessages FETCH responses expected);
// QRESYNC is a second SELECT with that modseq.
var benchRows = []string{"login-select", "fetch-flags", "fetch-bodies", "store-flag", "changedsince", "select-qresync", "sort-reverse-date", "thread-references"}

// changedMessages is how many messages change between the two SELECTs.
const changedMessages = 10

func versusDovecot(b *testing.B, n int) {
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

	// One warm-up round each: both build their indexes and caches.
	for _, addr := range []string{ours, dove} {
		imapWork(b, addr, n, 0)
	}
	var sum [2][8]time.Duration
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The servers take turns, in alternating order.
		for k := range 2 {
			j := (i + k) % 2
			r := imapWork(b, []string{ours, dove}[j], n, i+1)
			for k := range r.d {
				sum[j][k] += r.d[k]
			}
			bytes = r.bytes
		}
	}
	b.StopTimer()
	for k, name := range benchRows {
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
	sent := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		var sb strings.Builder
		// Dates out of arrival order; every fourth message a reply to
		// the one before (threads of up to four).
		date := sent.Add(time.Duration((i*7919)%n) * time.Minute).Format(time.RFC1123Z)
		fmt.Fprintf(&sb, "From: Sender %d <sender%d@far.example>\r\nTo: alice@local.example\r\nSubject: Message %d\r\nDate: %s\r\nMessage-ID: <%d@far.example>\r\n", i, i, i/4, date, i)
		if i%4 != 0 {
			fmt.Fprintf(&sb, "In-Reply-To: <%d@far.example>\r\nReferences: <%d@far.example> <%d@far.example>\r\n", i-1, i-i%4, i-1)
		}
		sb.WriteString("\r\n")
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
	d     [8]time.Duration // as benchRows
	bytes int64
}

// imapWork runs the timed client work against addr over a raw
// connection, reading literals by their announced size. round (0 for
// the warm-up) chooses whether the STOREs add or remove the flag, so
// that every STORE is a change.
func imapWork(b *testing.B, addr string, n, round int) workResult {
	var r workResult
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	must(b, err)
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var last []string // the untagged lines of the last command, without literals
	run := func(tag, cmd string) (lines int, bytes int64) {
		if cmd != "" {
			fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
		}
		last = last[:0]
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
			if len(last) < 64 {
				last = append(last, l)
			}
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
	code := func(name string) string {
		for _, l := range last {
			if i := strings.Index(l, "["+name+" "); i >= 0 {
				v, _, _ := strings.Cut(l[i+len(name)+2:], "]")
				return v
			}
		}
		b.Fatalf("%s: no %s in %q", addr, name, last)
		return ""
	}
	run("*", "") // greeting: read up to the first line
	run("a", fmt.Sprintf("LOGIN alice@local.example %q", testPassword))
	run("b", "SELECT INBOX")
	r.d[0] = time.Since(start)
	uidValidity := code("UIDVALIDITY")
	start = time.Now()
	if lines, _ := run("c", "UID FETCH 1:* (FLAGS UID RFC822.SIZE)"); lines < n {
		b.Fatalf("%s: %d FETCH lines", addr, lines)
	}
	r.d[1] = time.Since(start)
	start = time.Now()
	_, r.bytes = run("d", "UID FETCH 1:* BODY.PEEK[]")
	r.d[2] = time.Since(start)

	run("e", "ENABLE QRESYNC")
	run("f", "SELECT INBOX (CONDSTORE)")
	modseq := code("HIGHESTMODSEQ")
	op := "+"
	if round%2 == 1 {
		op = "-"
	}
	start = time.Now()
	for i := range changedMessages {
		// Spread over the folder, not the messages the warm-up paged in.
		uid := 1 + (i*n/changedMessages+n/(2*changedMessages))%n
		run("g", fmt.Sprintf("UID STORE %d %sFLAGS.SILENT (\\Flagged)", uid, op))
	}
	r.d[3] = time.Since(start) / changedMessages
	start = time.Now()
	if lines, _ := run("h", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE "+modseq+")"); lines != changedMessages {
		b.Fatalf("%s: %d FETCH responses to CHANGEDSINCE, want %d", addr, lines, changedMessages)
	}
	r.d[4] = time.Since(start)
	run("i", "UNSELECT")
	start = time.Now()
	if lines, _ := run("j", "SELECT INBOX (QRESYNC ("+uidValidity+" "+modseq+"))"); lines < changedMessages {
		b.Fatalf("%s: %d lines to SELECT (QRESYNC), want the %d changes", addr, lines, changedMessages)
	}
	r.d[5] = time.Since(start)
	start = time.Now()
	run("k", "UID SORT (REVERSE DATE) UTF-8 ALL")
	r.d[6] = time.Since(start)
	if len(last) != 1 || len(last[0]) < n {
		b.Fatalf("%s: SORT answered %.80q", addr, last)
	}
	start = time.Now()
	run("l", "UID THREAD REFERENCES UTF-8 ALL")
	r.d[7] = time.Since(start)
	if len(last) != 1 || len(last[0]) < n {
		b.Fatalf("%s: THREAD answered %.80q", addr, last)
	}
	run("m", "LOGOUT")
	return r
}
