package smtp

import (
	"fmt"
	"net"
	"testing"

	milter "github.com/d--j/go-milter"
	"github.com/mailagent/mailagent/smtp/mail"
)

// BenchmarkSMTPMilter sends 1000 messages of 10 KB over 8 and 32
// connections to the MX delivering into one Maildir, once with no
// filter and once with one no-op milter (go-milter's NoOpMilter served
// on loopback, which sees every stage and changes nothing), and reports
// both rates and their ratio, measured in the same run.
//
//	go test -run '^$' -bench SMTPMilter -benchtime 1x ./smtp
func BenchmarkSMTPMilter(b *testing.B) {
	const msgs = 1000
	srv := milter.NewServer(milter.WithMilter(func() milter.Milter { return milter.NoOpMilter{} }))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	rcpts := []string{"alice@local.example"}
	withMilter := func(o *Options) {
		o.Checks.Filters = []mail.Filter{&Milter{Address: "inet:" + l.Addr().String()}}
	}
	for _, conns := range []int{8, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			for range b.N {
				none := smtpRun(b, conns, rcpts, msgs)
				one := smtpRunWith(b, conns, rcpts, msgs, withMilter)
				b.ReportMetric(none, "none-msgs/s")
				b.ReportMetric(one, "milter-msgs/s")
				b.ReportMetric(one/none, "x-none")
			}
		})
	}
}
