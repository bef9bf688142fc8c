package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	milter "github.com/d--j/go-milter"
)

// quarantineMilter quarantines every message, as a milter holding mail
// for review does (SMFIR_QUARANTINE).
type quarantineMilter struct{ milter.NoOpMilter }

func (quarantineMilter) EndOfMessage(m milter.Modifier) (*milter.Response, error) {
	if err := m.Quarantine("held for review"); err != nil {
		return nil, err
	}
	return milter.RespAccept, nil
}

// TestQAMilterQuarantine: a message a milter on the MX quarantines is
// held in the queue: "queue list" shows it held, "queue release ID"
// delivers it to the recipient's Maildir, "queue delete ID" removes
// another one.
func TestQAMilterQuarantine(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	srv := milter.NewServer(milter.WithMilter(func() milter.Milter { return quarantineMilter{} }),
		milter.WithActions(milter.AllClientSupportedActionMasks))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	cfg := qaConfig(t, dir, "[milter]\nmx = [\"inet:"+l.Addr().String()+"\"]\n")
	s := qaStart(t, bin, cfg)
	s.admin(t, "", "domain", "add", "q.test")
	s.admin(t, "pw-of-quinn\n", "user", "add", "quinn@q.test")

	send := func(subject string) {
		c := qaSMTP(t, s.addrs["mx"])
		c.dialog([2]string{"EHLO client.far.test", "250"}, [2]string{"MAIL FROM:<sender@far.test>", "250"},
			[2]string{"RCPT TO:<quinn@q.test>", "250"}, [2]string{"DATA", "354"},
			[2]string{"Subject: " + subject + "\r\n\r\nbody\r\n.", "250"}, [2]string{"QUIT", "221"})
	}
	send("held one")
	send("held two")

	held := regexp.MustCompile(`(?m)^(\S+)!\s`)
	ids := held.FindAllStringSubmatch(s.admin(t, "", "queue", "list"), -1)
	if len(ids) != 2 {
		t.Fatalf("queue list shows %d held messages, want 2:\n%s", len(ids), s.admin(t, "", "queue", "list"))
	}
	newDir := filepath.Join(dir, "data", "mail", "q.test", "quinn", "Maildir", "new")
	if es, _ := os.ReadDir(newDir); len(es) != 0 {
		t.Fatalf("%d quarantined messages delivered before release", len(es))
	}
	// Which ID is which message does not matter: release one, delete
	// the other.
	s.admin(t, "", "queue", "release", ids[0][1])
	got := qaWaitFile(t, newDir, "Subject: held ")
	if !strings.Contains(got, "body\r\n") {
		t.Errorf("released message:\n%s", got)
	}
	s.admin(t, "", "queue", "delete", ids[1][1])
	if out := s.admin(t, "", "queue", "list"); strings.Contains(out, ids[1][1]) {
		t.Errorf("deleted message still listed:\n%s", out)
	}
	if es, _ := os.ReadDir(newDir); len(es) != 1 {
		t.Errorf("%d messages in the Maildir, want the released one", len(es))
	}
}
