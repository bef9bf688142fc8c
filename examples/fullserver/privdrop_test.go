package main

import (
	"bufio"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Started as root with user = "nobody", the server binds its listeners
// (the LMTP socket owned by nobody), then runs as nobody:nogroup with no
// other group, and a delivered message belongs to nobody.
func TestPrivilegeDropAsRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the privilege drop is from root to user nobody")
	}
	bin := qaBinary(t)
	// t.TempDir's parent is root's 0700: nobody could not reach the data.
	dir, err := os.MkdirTemp("", "privdrop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	sock := filepath.Join(dir, "lmtp.sock")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cfg := qaConfig(t, dir, `user = "nobody"
group = "nogroup"`)
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.Replace(string(text), `lmtp = "127.0.0.1:0"`,
		`lmtp = "unix:`+sock+`"`+"\n"+`lmtp_socket_owner = "nobody"`, 1))
	if err := os.WriteFile(cfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	s := qaStart(t, bin, cfg)

	status, err := os.ReadFile("/proc/" + strconv.Itoa(s.proc.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534\n", "Gid:\t65534\t65534\t65534\t65534\n", "Groups:\t65534 \n"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("process status lacks %q:\n%s", want, status)
		}
	}
	if st, err := os.Stat(sock); err != nil || st.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Fatalf("LMTP socket: %v, %v; want owned by nobody", st, err)
	}

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &qaText{t: t, conn: conn, r: textproto.NewReader(bufio.NewReader(conn))}
	c.dialog([2]string{"", "220"}, [2]string{"LHLO qa.test", "250"},
		[2]string{"MAIL FROM:<a@qa.test>", "250"}, [2]string{"RCPT TO:<postmaster@localhost>", "250"},
		[2]string{"DATA", "354"}, [2]string{"Subject: owned\r\n\r\nby nobody\r\n.", "250"}, [2]string{"QUIT", "221"})
	conn.Close()

	files, _ := filepath.Glob(filepath.Join(data, "mail", "localhost", "postmaster", "Maildir", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("delivered files: %v", files)
	}
	for _, p := range []string{files[0], filepath.Join(data, "mailagent.db")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 {
			t.Errorf("%s owned by %d:%d, want 65534:65534", p, sys.Uid, sys.Gid)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, s.logs)
	}
}

// The shipped unit passes systemd's own check, with the settings the
// README promises.
func TestSystemdUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile("mailagent.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n", "\nUser=vmail\n", "\nProtectSystem=strict\n",
		"\nReadWritePaths=/var/lib/mailagent\n", "\nRestart=on-failure\n", "\nExecReload=/bin/kill -HUP $MAINPID\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	// verify wants ExecStart's program to exist; the binary is installed
	// at /usr/local/bin only on a real server.
	tmp := filepath.Join(t.TempDir(), "mailagent.service")
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/fullserver", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
	// systemd-analyze exits 0 for unknown keys and bad values, and says
	// so: any output is a finding.
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
