package smtp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

const (
	benchMessages = 2000
	benchSize     = 10 << 10
)

// BenchmarkSMTPToMaildir sends 2000 messages of 10 KB over 1, 8 and 32
// connections to the MX, which delivers them into one Maildir, and
// compares the rate with the naive durable loop (write, fsync, rename,
// directory fsync, one message at a time) measured just before on the
// same disk. Every 250 comes after the file and its directory entry are
// fsynced, so the rate counts messages in the Maildir; the benchmark
// checks the file count at the end.
//
//	go test -run '^$' -bench SMTPToMaildir -benchtime 1x ./smtp
func BenchmarkSMTPToMaildir(b *testing.B) {
	for _, conns := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			for range b.N {
				naive := naiveLoop(b, benchMessages, benchSize)
				rate := smtpRun(b, conns, []string{"alice@local.example"}, benchMessages)
				b.ReportMetric(rate, "msgs/s")
				b.ReportMetric(naive, "naive-msgs/s")
				b.ReportMetric(rate/naive, "x-naive")
			}
		})
	}
}

// naiveLoop writes n files of size bytes the way the simplest durable
// Maildir delivery does and returns files per second.
func naiveLoop(b *testing.B, n, size int) float64 {
	dir := b.TempDir()
	for _, d := range []string{"tmp", "new"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	data := []byte(strings.Repeat("x", size))
	newDir, err := os.Open(filepath.Join(dir, "new"))
	if err != nil {
		b.Fatal(err)
	}
	defer newDir.Close()
	start := time.Now()
	for i := range n {
		name := fmt.Sprintf("%d.naive", i)
		tmp := filepath.Join(dir, "tmp", name)
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
			b.Fatal(err)
		}
		if err := newDir.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkSMTPToThreeMaildirs sends 1000 messages of 10 KB, each to
// three local users, over 8 connections: every message is written three
// times and the three copies are named together (two-phase delivery).
// The rate counts files landed per second, against the naive durable
// loop writing as many files just before on the same disk.
//
//	go test -run '^$' -bench SMTPToThreeMaildirs -benchtime 1x ./smtp
func BenchmarkSMTPToThreeMaildirs(b *testing.B) {
	const msgs = 1000
	rcpts := []string{"alice@local.example", "bob@local.example", "carol@local.example"}
	for range b.N {
		naive := naiveLoop(b, msgs*len(rcpts), benchSize)
		rate := smtpRun(b, 8, rcpts, msgs) * float64(len(rcpts))
		b.ReportMetric(rate, "files/s")
		b.ReportMetric(naive, "naive-files/s")
		b.ReportMetric(rate/naive, "x-naive")
	}
}

// smtpRun delivers msgs messages to rcpts over conns connections and
// returns messages per second.
func smtpRun(b *testing.B, conns int, rcpts []string, msgs int) float64 {
	return smtpRunWith(b, conns, rcpts, msgs, nil)
}

// smtpRunWith is smtpRun on an MX whose options set changes (filters,
// say).
func smtpRunWith(b *testing.B, conns int, rcpts []string, msgs int, set func(*Options)) float64 {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), &store.Options{CacheTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.AddDomain(ctx, "local.example"); err != nil {
		b.Fatal(err)
	}
	for _, r := range rcpts {
		if err := db.AddUser(ctx, &store.User{Address: r, PasswordHash: "x"}); err != nil {
			b.Fatal(err)
		}
	}
	md, err := maildir.New(filepath.Join(dir, "mail"), &maildir.Options{Hostname: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer md.Close()
	rt, err := router.New(router.Options{Directory: db, Local: &local.Delivery{Maildirs: md, Directory: db}})
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Role: MX, Hostname: "mx.test", Target: rt, SpoolDir: dir, MaxConnsPerIP: 64}
	if set != nil {
		set(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	body := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("y", 78)+"\r\n", benchSize/80) + ".\r\n"
	work := make(chan int, msgs)
	for i := range msgs {
		work <- i
	}
	close(work)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := benchClient(l.Addr().String(), rcpts, body, work); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for _, r := range rcpts {
		u, err := db.LookupUser(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		ents, err := os.ReadDir(filepath.Join(dir, "mail", u.Maildir, "new"))
		if err != nil {
			b.Fatal(err)
		}
		if len(ents) != msgs {
			b.Fatalf("%d files in %s's Maildir, want %d", len(ents), r, msgs)
		}
	}
	return float64(msgs) / elapsed.Seconds()
}

// benchClient sends one message to rcpts per item of work on one
// connection.
func benchClient(addr string, rcpts []string, body string, work <-chan int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	expect := func(code string) error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(l, code) {
				return fmt.Errorf("want %s, got %q", code, l)
			}
			if len(l) < 4 || l[3] != '-' {
				return nil
			}
		}
	}
	cmd := func(s, code string) error {
		if _, err := w.WriteString(s); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return expect(code)
	}
	if err := expect("220"); err != nil {
		return err
	}
	if err := cmd("EHLO bench\r\n", "250"); err != nil {
		return err
	}
	steps := [][2]string{{"MAIL FROM:<load@far.example>\r\n", "250"}}
	for _, r := range rcpts {
		steps = append(steps, [2]string{"RCPT TO:<" + r + ">\r\n", "250"})
	}
	steps = append(steps, [2]string{"DATA\r\n", "354"}, [2]string{body, "250"})
	for range work {
		for _, step := range steps {
			if err := cmd(step[0], step[1]); err != nil {
				return err
			}
		}
	}
	return cmd("QUIT\r\n", "221")
}
