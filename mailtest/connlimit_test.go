package mailtest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestConnectionLimitsAcrossListeners: WithConnectionLimits holds for
// all the stack's listeners together: with three connections open on
// three of them, a fourth on any gets its protocol's busy reply.
func TestConnectionLimitsAcrossListeners(t *testing.T) {
	s := NewServer(t, WithConnectionLimits(3, 3))
	first := func(addr string) string {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		return l
	}
	for _, addr := range []string{s.MXAddr, s.IMAPAddr, s.POP3Addr} {
		if l := first(addr); strings.HasPrefix(l, "421") || strings.HasPrefix(l, "* BYE") || strings.HasPrefix(l, "-ERR") {
			t.Fatalf("%s: %q, want a greeting", addr, l)
		}
	}
	for _, c := range []struct{ addr, busy string }{
		{s.MXAddr, "421 4.7.0 "}, {s.SubmissionAddr, "421 4.7.0 "}, {s.LMTPAddr, "421 4.7.0 "},
		{s.IMAPAddr, "* BYE [UNAVAILABLE] "}, {s.POP3Addr, "-ERR [SYS/TEMP] "},
	} {
		if l := first(c.addr); !strings.HasPrefix(l, c.busy) {
			t.Fatalf("%s, fourth connection: %q, want %q", c.addr, l, c.busy)
		}
	}
}
