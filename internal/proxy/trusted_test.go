package proxy

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// echoAddr serves ln, writing each connection's RemoteAddr and then
// echoing one line, until ln closes.
func echoAddr(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.WriteString(c, c.RemoteAddr().String()+"\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, line)
		}()
	}
}

func listenTrusted(t *testing.T, trusted ...string) net.Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for _, s := range trusted {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	ln := TrustedListener(raw, ps, 500*time.Millisecond)
	t.Cleanup(func() { ln.Close() })
	go echoAddr(ln)
	return ln
}

func dialFrom(t *testing.T, src string, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func header(t *testing.T, c net.Conn, client string) {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client)), c.RemoteAddr())
	if _, err := h.WriteTo(c); err != nil {
		t.Fatal(err)
	}
}

func TestTrustedProxyNamesTheClient(t *testing.T) {
	ln := listenTrusted(t, "127.0.0.5/32")
	c := dialFrom(t, "127.0.0.5", ln.Addr())
	header(t, c, "192.0.2.7:4444")
	br := bufio.NewReader(c)
	if got, _ := br.ReadString('\n'); got != "192.0.2.7:4444\n" {
		t.Fatalf("RemoteAddr behind a trusted proxy = %q", got)
	}
	io.WriteString(c, "A1 NOOP\r\n")
	if got, _ := br.ReadString('\n'); got != "A1 NOOP\r\n" {
		t.Fatalf("bytes after the header = %q", got)
	}
}

func TestUntrustedHeaderIsRefused(t *testing.T) {
	ln := listenTrusted(t, "127.0.0.5/32")
	for _, h := range []string{"v1", "v2"} {
		c := dialFrom(t, "127.0.0.6", ln.Addr())
		if h == "v2" {
			header(t, c, "192.0.2.7:4444")
		} else {
			io.WriteString(c, "PROXY TCP4 192.0.2.7 127.0.0.1 4444 143\r\n")
		}
		br := bufio.NewReader(c)
		if got, _ := br.ReadString('\n'); !strings.HasPrefix(got, "127.0.0.6:") {
			t.Fatalf("RemoteAddr of an untrusted peer = %q", got)
		}
		if got, err := br.ReadString('\n'); err == nil {
			t.Fatalf("%s header from an untrusted peer was served: %q", h, got)
		}
	}
	// Without a header, an untrusted peer is served as it is.
	c := dialFrom(t, "127.0.0.6", ln.Addr())
	br := bufio.NewReader(c)
	br.ReadString('\n')
	io.WriteString(c, "PRO\r\n")
	if got, _ := br.ReadString('\n'); got != "PRO\r\n" {
		t.Fatalf("a command looking like the start of a header = %q", got)
	}
}

func TestTrustedPeerWithoutHeaderIsClosed(t *testing.T) {
	ln := listenTrusted(t, "127.0.0.5/32")
	slow := dialFrom(t, "127.0.0.5", ln.Addr())
	// Meanwhile the listener serves others.
	c := dialFrom(t, "127.0.0.6", ln.Addr())
	if got, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(got, "127.0.0.6:") {
		t.Fatalf("another client while a proxy is silent: %q", got)
	}
	if n, err := slow.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a trusted peer without a header was served (%d bytes)", n)
	}
}
