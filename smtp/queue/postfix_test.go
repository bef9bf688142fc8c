package queue

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop/postfixtest"
)

// A private Postfix instance, for the benchmark baseline and the smart
// host interop test, relaying everything to a receiver on loopback.

type postfixInstance struct {
	*postfixtest.Postfix
	smtpd string
}

// postfixConfig describes a private Postfix instance relaying everything
// to a receiver on loopback.
type postfixConfig struct {
	sinkPort int
	conns    int
	// main is added to main.cf; smtpd to the smtpd line of master.cf.
	main  string
	smtpd string
}

// startPostfix runs a Postfix instance in a temporary directory until the
// test ends; its smtpd listens on a free loopback port.
func startPostfix(tb testing.TB, cfg postfixConfig) *postfixInstance {
	tb.Helper()
	if cfg.conns == 0 {
		cfg.conns = 20
	}
	pf := postfixtest.Start(tb, postfixtest.Options{
		Main: fmt.Sprintf(`myhostname = mta.postfix-bench.invalid
mydomain = postfix-bench.invalid
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:%d
smtp_tls_security_level = none
default_destination_concurrency_limit = %[2]d
initial_destination_concurrency = %[2]d
in_flow_delay = 0
%[3]s`, cfg.sinkPort, cfg.conns, cfg.main),
		SMTPDArgs: cfg.smtpd,
		Services: `flush     unix  n       -       n       1000?   0       flush
proxywrite unix -       -       n       -       1       proxymap
`,
	})
	return &postfixInstance{Postfix: pf, smtpd: pf.SMTPD}
}

// setQmgr runs or stops the queue manager, which moves messages from
// the incoming queue to delivery.
func (pf *postfixInstance) setQmgr(tb testing.TB, on bool) {
	pf.SetService(tb, "qmgr", on)
}

// waitQueued waits until n messages sit in the incoming queue.
func (pf *postfixInstance) waitQueued(tb testing.TB, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		count := 0
		filepath.WalkDir(filepath.Join(pf.Spool, "incoming"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				count++
			}
			return nil
		})
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("postfix queued %d of %d", count, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
