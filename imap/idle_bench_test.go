package imap

import (
	"bufio"
	"compress/flate"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleHeap measures the server's heap per connection in IDLE
// with INBOX selected. The clients run in a child process (this test
// binary in TestIdleClients mode), so that only the server's memory is
// counted. MAILAGENT_BENCH_IDLE_CONNS sets the number of connections
// (default 1000); MAILAGENT_BENCH_IDLE_TLS=1 serves them with implicit
// TLS; MAILAGENT_BENCH_IDLE_COMPRESS=1 has each client turn on COMPRESS
// DEFLATE (RFC 4978) after LOGIN. MAILAGENT_BENCH_IDLE_HEAPPROFILE names a file to write a heap
// profile to while the connections are held, with every allocation
// sampled.
func BenchmarkIdleHeap(b *testing.B) {
	profile := os.Getenv("MAILAGENT_BENCH_IDLE_HEAPPROFILE")
	if profile != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("MAILAGENT_BENCH_IDLE_CONNS")); err == nil && v > 0 {
		n = v
	}
	st := newTestStack(b)
	st.deliver("alice@local.example", "INBOX", testMessage)
	opts := st.options()
	opts.MaxConnsPerIP = n + 10
	opts.MaxConnsPerUser = n + 10
	opts.MaxConns = n + 10
	useTLS := os.Getenv("MAILAGENT_BENCH_IDLE_TLS") == "1"
	useCompress := os.Getenv("MAILAGENT_BENCH_IDLE_COMPRESS") == "1"
	opts.ImplicitTLS = useTLS
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

	for i := 0; i < b.N; i++ {
		before := heapInUse()
		goroutines := runtime.NumGoroutine()
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClients$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("MAILAGENT_IDLE_CLIENTS=%s,%d,%t,%t", l.Addr(), n, useTLS, useCompress))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		ready := false
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready = true
				break
			}
		}
		if !ready {
			b.Fatal("clients did not get ready")
		}
		// Each connection has its serve goroutine and IDLE's once the
		// server has started both.
		for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() < goroutines+2*n; {
			if time.Now().After(deadline) {
				b.Fatalf("%d goroutines, want %d", runtime.NumGoroutine(), goroutines+2*n)
			}
			runtime.Gosched()
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(n), "heap-B/conn")
		b.ReportMetric(float64(n), "conns")
		if profile != "" {
			if err := writeHeapProfile(profile); err != nil {
				b.Fatal(err)
			}
		}
		stdin.Close()
		cmd.Wait()
	}
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestIdleClients is BenchmarkIdleHeap's client process: it opens the
// connections, logs each in, selects INBOX and enters IDLE, prints READY
// and holds them until stdin is closed.
func TestIdleClients(t *testing.T) {
	spec := os.Getenv("MAILAGENT_IDLE_CLIENTS")
	if spec == "" {
		t.Skip("client process of BenchmarkIdleHeap")
	}
	parts := strings.Split(spec, ",")
	addr := parts[0]
	n, _ := strconv.Atoi(parts[1])
	useTLS := len(parts) > 2 && parts[2] == "true"
	useCompress := len(parts) > 3 && parts[3] == "true"
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		var c net.Conn
		var err error
		if useTLS {
			c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		var w io.Writer = c
		flush := func() {}
		fmt.Fprintf(c, "a LOGIN alice@local.example %q\r\n", testPassword)
		if useCompress {
			fmt.Fprintf(c, "z COMPRESS DEFLATE\r\n")
			idleClientWait(t, i, r, "z OK")
			// Both directions deflated from here on (RFC 4978).
			r = bufio.NewReader(flate.NewReader(r))
			fw, _ := flate.NewWriter(c, flate.DefaultCompression)
			w, flush = fw, func() { fw.Flush() }
		}
		fmt.Fprintf(w, "b SELECT INBOX\r\nc IDLE\r\n")
		flush()
		idleClientWait(t, i, r, "+ ")
		conns = append(conns, c)
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// idleClientWait reads connection i's responses up to a line starting
// with want, failing on a refusal.
func idleClientWait(t *testing.T, i int, r *bufio.Reader, want string) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if strings.HasPrefix(l, "a NO") || strings.HasPrefix(l, "b NO") || strings.HasPrefix(l, "z NO") || strings.HasPrefix(l, "z BAD") || strings.HasPrefix(l, "* BYE") {
			t.Fatalf("connection %d: %s", i, l)
		}
		if strings.HasPrefix(l, want) {
			return
		}
	}
}
