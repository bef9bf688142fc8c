package mailtest_test

import (
	"fmt"
	"strings"

	"github.com/mailagent/mailagent/internal/examplet"
	"github.com/mailagent/mailagent/mailtest"
)

// Two domains on one network: mail submitted at a.test is delivered by MX
// lookup to b.test and arrives authenticated.
func Example() {
	t := &examplet.T{}
	defer t.Done()

	network := mailtest.NewNetwork()
	a := mailtest.NewServer(t, mailtest.WithDomain("a.test"), mailtest.WithNetwork(network))
	b := mailtest.NewServer(t, mailtest.WithDomain("b.test"), mailtest.WithNetwork(network))
	a.AddUser("alice@a.test", "alice-password")
	b.AddUser("bob@b.test", "bob-password")

	err := a.Submit("alice@a.test", "alice-password", "alice@a.test", []string{"bob@b.test"},
		"From: alice@a.test\nTo: bob@b.test\nSubject: Hello\n\nHi Bob!\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := b.WaitMessage("bob@b.test", "INBOX")
	fmt.Println(m.Header.Get("Subject"))
	fmt.Println(strings.TrimSpace(m.Body))
	fmt.Println(strings.Contains(m.Header.Get("Authentication-Results"), "dmarc=pass"))
	// Output:
	// Hello
	// Hi Bob!
	// true
}

// A POP3 client reads and deletes what the MX delivered.
func ExampleServer_DialPOP3() {
	t := &examplet.T{}
	defer t.Done()

	s := mailtest.NewServer(t, mailtest.WithDomain("example.test"))
	s.AddUser("carol@example.test", "pw")
	if err := s.SendMX("news@elsewhere.test", []string{"carol@example.test"}, "Subject: news\n\ntoday\n"); err != nil {
		fmt.Println(err)
		return
	}
	s.WaitMessage("carol@example.test", "INBOX")

	c := s.DialPOP3("carol@example.test", "pw")
	n, _, _ := c.Stat()
	fmt.Println(n, "message")
	c.Dele(1)
	c.Quit()
	fmt.Println(len(s.Messages("carol@example.test", "INBOX")), "left")
	// Output:
	// 1 message
	// 0 left
}
