package pop3

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// benchMessages and benchSize are the maildrop of BenchmarkRETR: 10,000
// messages of 10 KB (CRLF size).
const (
	benchMessages = 10_000
	benchSize     = 10 << 10
)

// BenchmarkRETR retrieves every message of a 10,000 × 10 KB maildrop in
// one pipelined session (RETR 1 … RETR n, QUIT, no DELE), from this
// server and from Dovecot's POP3 server on a copy of the same Maildir,
// in the same run. MB/s is message octets per second; x-dovecot is this
// server's rate over Dovecot's.
func BenchmarkRETR(b *testing.B) {
	dove := dovecottest.Start(b, dovecottest.Options{
		Protocols: []string{"pop3"},
		Users:     map[string]string{"bench@example.org": "secret"},
	})
	dovecotAddr := dove.POP3
	e := newEnv(b)
	u := e.addUser("bench@example.org", "secret")

	// The Maildir is written directly (an MDA's files in cur/, as a
	// migrated mailbox has them) rather than delivered with an fsync
	// each, which would take minutes here and is not what is measured.
	md := filepath.Join(e.base, u.Maildir)
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	msg := sizedMessage("bench", benchSize)
	vsize := len(crlf(msg))
	for i := range benchMessages {
		name := fmt.Sprintf("1700000000.M%06dP1.bench,S=%d,W=%d:2,", i, len(msg), vsize)
		if err := os.WriteFile(filepath.Join(md, "cur", name), []byte(msg), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	e.snapshot(u) // UIDs, dovecot-uidlist
	dmd := filepath.Join(dove.Root, "mail", "example.org", "bench", "Maildir")
	copyTree(b, md, dmd)
	dove.ChownTree(b, filepath.Join(dove.Root, "mail"))
	total := int64(benchMessages * vsize)

	// One session each first: Dovecot builds its index, both set \Seen.
	for _, addr := range []string{e.addr, dovecotAddr} {
		if got := retrAll(b, addr, "bench@example.org", "secret"); got != total {
			b.Fatalf("%s sent %d message octets, want %d", addr, got, total)
		}
	}
	// The two servers take turns within the run, so that load from
	// the rest of the machine, which changes by the second, falls on
	// both alike; the ratio is the figure that means something.
	var mine, theirs time.Duration
	n := 0
	for b.Loop() {
		order := []string{e.addr, dovecotAddr}
		if n%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, addr := range order {
			start := time.Now()
			retrAll(b, addr, "bench@example.org", "secret")
			if addr == e.addr {
				mine += time.Since(start)
			} else {
				theirs += time.Since(start)
			}
		}
		n++
	}
	mb := float64(total) * float64(n) / 1e6
	b.ReportMetric(mb/mine.Seconds(), "mailagent-MB/s")
	b.ReportMetric(mb/theirs.Seconds(), "dovecot-MB/s")
	b.ReportMetric(theirs.Seconds()/mine.Seconds(), "x-dovecot")
	b.ReportMetric(0, "ns/op")
}

// retrAll logs in at addr, pipelines RETR for every message and QUIT,
// and returns the message octets received (dot-stuffing and the
// terminating lines not counted).
func retrAll(b *testing.B, addr, user, pass string) int64 {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReaderSize(nc, 64<<10)
	line := func() []byte {
		l, err := r.ReadSlice('\n')
		if err != nil {
			b.Fatalf("%s: %v", addr, err)
		}
		return l
	}
	ok := func(what string) string {
		l := line()
		if !bytes.HasPrefix(l, []byte("+OK")) {
			b.Fatalf("%s: %s: %q", addr, what, l)
		}
		return string(l)
	}
	ok("greeting")
	fmt.Fprintf(nc, "USER %s\r\nPASS %s\r\nSTAT\r\n", user, pass)
	ok("USER")
	ok("PASS")
	var n int
	if _, err := fmt.Sscanf(ok("STAT"), "+OK %d", &n); err != nil || n != benchMessages {
		b.Fatalf("%s: STAT: %d messages, %v", addr, n, err)
	}
	go func() {
		w := bufio.NewWriterSize(nc, 64<<10)
		for i := 1; i <= n; i++ {
			w.WriteString("RETR " + strconv.Itoa(i) + "\r\n")
		}
		w.WriteString("QUIT\r\n")
		w.Flush()
	}()
	var octets int64
	for range n {
		ok("RETR")
		for {
			l := line()
			if len(l) == 3 && l[0] == '.' {
				break
			}
			if l[0] == '.' {
				l = l[1:]
			}
			octets += int64(len(l))
		}
	}
	ok("QUIT")
	return octets
}

func copyTree(b testing.TB, src, dst string) {
	b.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if filepath.Base(p) == "mailagent.index" || filepath.Base(p) == "mailagent-session.lock" {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}
