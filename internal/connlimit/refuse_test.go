package connlimit

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailagent/mailagent/auth"
)

func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	certFile, keyFile, err := auth.SelfSigned(filepath.Join(t.TempDir(), "tls"), "busy.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// TestRefuse: the client reads the busy reply, in plaintext or over
// TLS, and then the close.
func TestRefuse(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		client, server := net.Pipe()
		var cfg *tls.Config
		var c net.Conn = client
		if useTLS {
			cfg = serverTLS(t)
			c = tls.Client(client, &tls.Config{InsecureSkipVerify: true})
		}
		done := make(chan struct{})
		go func() {
			Refuse(server, cfg, "421 4.7.0 Too many connections\r\n")
			close(done)
		}()
		r := bufio.NewReader(c)
		l, err := r.ReadString('\n')
		if err != nil || l != "421 4.7.0 Too many connections\r\n" {
			t.Fatalf("TLS %v: got %q, %v", useTLS, l, err)
		}
		if b, err := io.ReadAll(r); len(b) != 0 || err != nil {
			t.Fatalf("TLS %v: after the reply %q, %v; want the close", useTLS, b, err)
		}
		<-done
		c.Close()
	}
}

// TestRefuseSilentClient: a client that never starts its handshake
// holds Refuse for 10 s at most.
func TestRefuseSilentClient(t *testing.T) {
	cfg := serverTLS(t)
	synctest.Test(t, func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		start := time.Now()
		Refuse(server, cfg, "421 busy\r\n")
		if d := time.Since(start); d != refuseWithin {
			t.Fatalf("Refuse returned after %v, want %v", d, refuseWithin)
		}
	})
}

// TestRefusalsBounded: with MaxRefusing refusals waiting on silent
// clients, the next refused connection is closed at once without a
// reply; once they are over, refusals reply again.
func TestRefusalsBounded(t *testing.T) {
	cfg := serverTLS(t)
	synctest.Test(t, func(t *testing.T) {
		var r Refusals
		for range MaxRefusing {
			client, server := net.Pipe()
			defer client.Close()
			r.Refuse(server, cfg, "busy\r\n")
		}
		client, server := net.Pipe()
		r.Refuse(server, nil, "busy\r\n")
		if b, err := io.ReadAll(client); len(b) != 0 || err != nil {
			t.Fatalf("refusal past the bound: %q, %v; want a close without a reply", b, err)
		}
		time.Sleep(refuseWithin)
		synctest.Wait()
		client, server = net.Pipe()
		r.Refuse(server, nil, "busy\r\n")
		if b, err := io.ReadAll(client); string(b) != "busy\r\n" || err != nil {
			t.Fatalf("refusal after the others ended: %q, %v", b, err)
		}
	})
}
