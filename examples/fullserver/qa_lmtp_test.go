package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// qaConfigLMTP is qaConfig with the LMTP keys of lmtp in place of its
// TCP listener.
func qaConfigLMTP(t *testing.T, dir, lmtp string) string {
	t.Helper()
	cfg := qaConfig(t, dir, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "lmtp = \"127.0.0.1:0\"\n", lmtp, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// firstReply reads the server's first reply line on c.
func firstReply(t *testing.T, c net.Conn) string {
	t.Helper()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	return line
}

// TestQALMTPTrust: listen.lmtp_networks keeps TCP clients outside it
// away (554 5.7.1 instead of the greeting), and an LMTP Unix socket gets
// listen.lmtp_socket_mode and lmtp_socket_owner before it takes
// connections.
func TestQALMTPTrust(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)

	dir := t.TempDir()
	s := qaStart(t, bin, qaConfigLMTP(t, dir,
		"lmtp = \"127.0.0.1:0\"\nlmtp_networks = [\"192.0.2.0/24\", \"2001:db8::1\"]\n"))
	c, err := net.Dial("tcp", s.addrs["lmtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := firstReply(t, c); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("LMTP from outside lmtp_networks greeted with %q, want 554 5.7.1", got)
	}

	dir = t.TempDir()
	sock := filepath.Join(dir, "lmtp.sock")
	owner := ""
	if os.Geteuid() == 0 {
		owner = "lmtp_socket_owner = \"65534\"\nlmtp_socket_group = \"65534\"\n"
	}
	s = qaStart(t, bin, qaConfigLMTP(t, dir,
		fmt.Sprintf("lmtp = \"unix:%s\"\nlmtp_socket_mode = \"0660\"\n%s", sock, owner)))
	if s.addrs["lmtp"] != sock {
		t.Errorf("banner shows LMTP at %q, want %q", s.addrs["lmtp"], sock)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("LMTP socket mode %v, want a socket with 0660", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); owner != "" && (st.Uid != 65534 || st.Gid != 65534) {
		t.Errorf("LMTP socket owned by %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	c, err = net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := firstReply(t, c); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("LMTP socket greeted with %q, want 220", got)
	}
}
