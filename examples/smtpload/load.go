package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// maxErrors is how many error messages a result keeps; the count of
// failures is always complete.
const maxErrors = 5

// config is a parsed command line.
type config struct {
	addr        string
	lmtp        bool
	conns       int
	total       int
	size        int
	from        string
	to          []string
	perConn     int // 0: all of a connection's messages in one session
	startTLS    bool
	implicitTLS bool
	tlsConfig   *tls.Config
	user, pass  string
	ehlo        string
	timeout     time.Duration
	record      io.Writer // nil: no record
}

// latencies are transaction times in milliseconds.
type latencies struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// result is what a run reports, also as JSON with -json.
type result struct {
	Addr        string    `json:"addr"`
	Protocol    string    `json:"protocol"`
	Connections int       `json:"connections"`
	Messages    int       `json:"messages"`
	Size        int       `json:"size"`
	Sent        int       `json:"sent"`
	Failed      int       `json:"failed"`
	Errors      []string  `json:"errors,omitempty"`
	Interrupted bool      `json:"interrupted,omitempty"`
	Sessions    int       `json:"sessions"`
	Bytes       int64     `json:"bytes"`
	Elapsed     float64   `json:"elapsed_s"`
	MsgsPerSec  float64   `json:"msgs_per_s"`
	MBPerSec    float64   `json:"mb_per_s"`
	Latency     latencies `json:"latency"`
}

// load is the shared state of one run's workers.
type load struct {
	cfg  *config
	run  string // unique to this run, in every Message-ID
	next atomic.Int64

	mu       sync.Mutex
	sent     int
	failed   int
	errs     []string
	sessions int
	bytes    int64
	txn      []time.Duration
	recErr   error
}

// run sends cfg.total messages over cfg.conns connections and reports.
// Cancelling ctx stops the workers from starting transactions; those in
// flight finish (each step bounded by cfg.timeout), so the result counts
// only what the server answered.
func run(ctx context.Context, cfg *config) (*result, error) {
	var id [6]byte
	rand.Read(id[:])
	l := &load{cfg: cfg, run: hex.EncodeToString(id[:])}
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.conns {
		wg.Go(func() { l.worker(ctx) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	proto := "smtp"
	if cfg.lmtp {
		proto = "lmtp"
	}
	r := &result{
		Addr: cfg.addr, Protocol: proto, Connections: cfg.conns, Messages: cfg.total, Size: cfg.size,
		Sent: l.sent, Failed: l.failed, Errors: l.errs, Interrupted: ctx.Err() != nil,
		Sessions: l.sessions, Bytes: l.bytes, Elapsed: elapsed.Seconds(),
	}
	if s := elapsed.Seconds(); s > 0 {
		r.MsgsPerSec = float64(l.sent) / s
		r.MBPerSec = float64(l.bytes) / 1e6 / s
	}
	slices.Sort(l.txn)
	r.Latency = latencies{P50: percentile(l.txn, 50), P90: percentile(l.txn, 90), P99: percentile(l.txn, 99)}
	if len(l.txn) > 0 {
		r.Latency.Max = ms(l.txn[len(l.txn)-1])
	}
	if l.recErr != nil {
		return r, fmt.Errorf("writing the record: %w", l.recErr)
	}
	return r, nil
}

// percentile is the nearest-rank percentile p of sorted d, in ms.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(d)))) - 1
	return ms(d[max(i, 0)])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// worker sends messages on one connection after another until the run's
// messages are all taken or ctx is cancelled.
func (l *load) worker(ctx context.Context) {
	var c *smtp.Client
	inSession := 0
	defer func() {
		if c != nil {
			c.Quit()
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		seq := int(l.next.Add(1))
		if seq > l.cfg.total {
			return
		}
		if c != nil && l.cfg.perConn > 0 && inSession >= l.cfg.perConn {
			c.Quit()
			c.Close()
			c = nil
		}
		if c == nil {
			var err error
			if c, err = dial(ctx, l.cfg); err != nil {
				if ctx.Err() == nil {
					l.fail(seq, fmt.Errorf("connect: %w", err))
				}
				continue
			}
			inSession = 0
			l.mu.Lock()
			l.sessions++
			l.mu.Unlock()
		}
		inSession++
		rcpt := l.cfg.to[(seq-1)%len(l.cfg.to)]
		m := newMessage(l.run, seq, l.cfg.from, rcpt, l.cfg.ehlo, l.cfg.size, time.Now())
		t0 := time.Now()
		err := l.send(c, rcpt, m)
		d := time.Since(t0)
		if err == nil {
			l.ok(m, d)
			continue
		}
		l.fail(seq, err)
		var se *smtp.SMTPError
		var le smtp.LMTPDataError
		if errors.As(err, &se) || errors.As(err, &le) {
			// The server refused this message; the session goes on.
			if c.Reset() == nil {
				continue
			}
		}
		c.Close()
		c = nil
	}
}

// send runs one transaction, MAIL to the reply to the end of DATA.
func (l *load) send(c *smtp.Client, rcpt string, m message) error {
	if err := c.Mail(l.cfg.from, nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(m.data); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// ok counts an acknowledged message and records it.
func (l *load) ok(m message, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	l.bytes += int64(len(m.data))
	l.txn = append(l.txn, d)
	if l.cfg.record != nil && l.recErr == nil {
		// One write per line, under the lock, so that a reader of
		// the file (or pipe) never sees a partial or mixed line.
		_, l.recErr = io.WriteString(l.cfg.record, m.id+" "+m.hash+"\n")
	}
}

// fail counts a message that was not acknowledged.
func (l *load) fail(seq int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, fmt.Sprintf("message %d: %v", seq, err))
	}
}
