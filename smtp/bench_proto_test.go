package smtp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// discardTarget accepts every recipient and reads and drops each body:
// what is left to measure is the protocol path.
type discardTarget struct{}

func (discardTarget) Start(context.Context, *mail.Envelope) (mail.Delivery, error) {
	return discardDelivery{}, nil
}

type discardDelivery struct{}

func (discardDelivery) AddRecipient(context.Context, string) error { return nil }
func (discardDelivery) Commit(context.Context) error               { return nil }
func (discardDelivery) Abort(context.Context) error                { return nil }
func (discardDelivery) Body(_ context.Context, body mail.Body) error {
	rc, err := body.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// BenchmarkSMTPProtocol sends 10 KB messages over one plaintext
// connection to an MX whose target drops them: the cost per message of
// the SMTP path (framing, parsing, session, header fields), without
// storage.
//
//	go test -run '^$' -bench SMTPProtocol ./smtp
func BenchmarkSMTPProtocol(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(Options{Role: MX, Hostname: "mx.test", Target: discardTarget{}, SpoolDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(code string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if !strings.HasPrefix(line, code) {
				b.Fatalf("want %s, got %q", code, line)
			}
			if len(line) < 4 || line[3] != '-' {
				return
			}
		}
	}
	expect("220")
	fmt.Fprintf(c, "EHLO bench.example\r\n")
	expect("250")
	body := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", benchSize/78) + ".\r\n"
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		io.WriteString(c, "MAIL FROM:<a@far.example>\r\nRCPT TO:<b@local.example>\r\nDATA\r\n")
		expect("250")
		expect("250")
		expect("354")
		io.WriteString(c, body)
		expect("250")
	}
}
