package imap

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
)

// BenchmarkSearchLargeMessages searches 50 messages with 1 MiB bodies
// by a header field (read from the header alone) and by body text
// (whole messages decoded).
func BenchmarkSearchLargeMessages(b *testing.B) {
	st := newTestStack(b)
	body := strings.Repeat(strings.Repeat("lorem ipsum ", 6)+"\r\n", 1<<20/74)
	for i := range 50 {
		st.deliver("alice@local.example", "INBOX", fmt.Sprintf("From: sender%d@far.example\r\nSubject: message %d\r\n\r\n%s", i, i, body))
	}
	_, addr := st.serve(st.options())
	run := benchSession(b, addr)
	run("EXAMINE INBOX")
	for _, q := range []string{"FROM sender7@", "SUBJECT \"message 42\"", "BODY nothere"} {
		b.Run(strings.Fields(q)[0], func(b *testing.B) {
			for b.Loop() {
				run("SEARCH " + q)
			}
		})
	}
}

// benchSession dials the server at addr and logs alice in; run sends
// one command and returns how many lines answered it before its tagged
// OK.
func benchSession(b *testing.B, addr string) (run func(cmd string) int) {
	c, err := net.Dial("tcp", addr)
	must(b, err)
	b.Cleanup(func() { c.Close() })
	r := bufio.NewReaderSize(c, 64<<10)
	run = func(cmd string) (lines int) {
		fmt.Fprintf(c, "b %s\r\n", cmd)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(l, "b ") {
				if !strings.HasPrefix(l, "b OK") {
					b.Fatalf("%s: %s", cmd, l)
				}
				return lines
			}
			lines++
		}
	}
	r.ReadString('\n')
	run(fmt.Sprintf("LOGIN alice@local.example %q", testPassword))
	return run
}
