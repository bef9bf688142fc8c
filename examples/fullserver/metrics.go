package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/queue"
)

// metrics are the server's Prometheus metrics, on a registry of their own.
//
// Counts of events that the components already log (rejections, logins
// refused, notifications) are taken from the log records themselves, as
// mtail would, so that the components need no metrics dependency: the
// record's message is the event's name.
type metrics struct {
	reg         *prometheus.Registry
	conns       *prometheus.CounterVec
	open        *prometheus.GaugeVec
	received    prometheus.Counter
	delivered   prometheus.Counter
	latency     prometheus.Histogram
	rejected    *prometheus.CounterVec
	bounced     prometheus.Counter
	relayed     prometheus.Counter
	deferred    prometheus.Counter
	authFailed  prometheus.Counter
	queueOldest prometheus.Gauge
}

// rejections maps the log messages of refusals to the reason label.
var rejections = map[string]string{
	"recipient refused":                 "recipient",
	"sender refused by check":           "sender_check",
	"sender refused: not owned":         "sender_not_owned",
	"message refused by check":          "message_check",
	"message refused":                   "message_content",
	"connection refused by check":       "connection_check",
	"connection refused: limit reached": "connection_limit",
	"message not delivered":             "delivery_failed",
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailagent_connections_total", Help: "Connections accepted, by protocol listener.",
		}, []string{"protocol"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mailagent_connections_open", Help: "Connections open now, by protocol listener.",
		}, []string{"protocol"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailagent_messages_received_total", Help: "Messages accepted over SMTP, submission and LMTP.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailagent_messages_delivered_total", Help: "Copies delivered into local Maildirs.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mailagent_delivery_latency_seconds", Help: "Time from the start of a transaction to a local copy on disk.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailagent_messages_rejected_total", Help: "Connections, senders, recipients and messages refused, by reason.",
		}, []string{"reason"}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailagent_queue_messages_done_total", Help: "Queued messages finished: every recipient delivered to its next hop or failed for good.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailagent_queue_attempts_deferred_total", Help: "Delivery attempts that left recipients queued for a retry.",
		}),
		bounced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailagent_messages_bounced_total", Help: "Delivery status notifications sent to senders.",
		}),
		authFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailagent_auth_failures_total", Help: "Failed and throttled logins, all protocols.",
		}),
		queueOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailagent_queue_oldest_seconds", Help: "Age of the oldest message in the outbound queue.",
		}),
	}
	for reason := range rejections {
		m.rejected.WithLabelValues(rejections[reason])
	}
	m.reg.MustRegister(m.conns, m.open, m.received, m.delivered, m.latency, m.rejected, m.bounced,
		m.relayed, m.deferred, m.authFailed, m.queueOldest)
	return m
}

func (m *metrics) mux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// watchAuth exports how many passwords the Authenticator verified: the
// work that guessing costs, which the login throttle bounds.
func (m *metrics) watchAuth(a *auth.Authenticator) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mailagent_password_verifications_total", Help: "Logins whose password hash was verified (throttled attempts are not).",
	}, func() float64 { return float64(a.Verifications()) }))
}

// watchQueue exports the queue's size, and its oldest message's age
// (refreshed each minute: that takes a walk of the spool).
func (m *metrics) watchQueue(q *queue.Queue) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mailagent_queue_messages", Help: "Messages in the outbound queue.",
	}, func() float64 { return float64(q.Len()) }))
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			var oldest time.Time
			err := q.List(context.Background(), func(i *queue.Info) error {
				if oldest.IsZero() || i.Arrived.Before(oldest) {
					oldest = i.Arrived
				}
				return nil
			})
			if err == queue.ErrClosed {
				return
			}
			if oldest.IsZero() {
				m.queueOldest.Set(0)
			} else {
				m.queueOldest.Set(time.Since(oldest).Seconds())
			}
			<-t.C
		}
	}()
}

// handler wraps h so that log records of countable events are counted.
func (m *metrics) handler(h slog.Handler) slog.Handler { return &countingHandler{m: m, next: h} }

type countingHandler struct {
	m    *metrics
	next slog.Handler
}

func (c *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Every record is seen, whatever the log level, so counts do not
	// depend on it.
	return true
}

func (c *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "message delivered":
		c.m.received.Inc()
	case "login failed", "login refused: throttled":
		c.m.authFailed.Inc()
	case "queue: notification sent":
		c.m.bounced.Inc()
	case "queue: message done":
		c.m.relayed.Inc()
	case "queue: message deferred":
		c.m.deferred.Inc()
	default:
		if reason, ok := rejections[r.Message]; ok {
			c.m.rejected.WithLabelValues(reason).Inc()
		}
	}
	if !c.next.Enabled(ctx, r.Level) {
		return nil
	}
	return c.next.Handle(ctx, r)
}

func (c *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{m: c.m, next: c.next.WithAttrs(as)}
}

func (c *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{m: c.m, next: c.next.WithGroup(name)}
}

// countConnections counts the connections a listener accepts.
func (m *metrics) countConnections(protocol string, ln net.Listener) net.Listener {
	return &countingListener{Listener: ln, total: m.conns.WithLabelValues(protocol), open: m.open.WithLabelValues(protocol)}
}

type countingListener struct {
	net.Listener
	total prometheus.Counter
	open  prometheus.Gauge
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.total.Inc()
	l.open.Inc()
	return &countingConn{Conn: c, open: l.open}, nil
}

type countingConn struct {
	net.Conn
	open   prometheus.Gauge
	closed bool
}

func (c *countingConn) Close() error {
	if !c.closed {
		c.closed = true
		c.open.Dec()
	}
	return c.Conn.Close()
}

// countDeliveries counts local copies and their latency.
func (m *metrics) countDeliveries(t mail.Target) mail.Target {
	return &countingTarget{m: m, next: t}
}

type countingTarget struct {
	m    *metrics
	next mail.Target
}

func (t *countingTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	d, err := t.next.Start(ctx, env)
	if err != nil {
		return nil, err
	}
	return &countingDelivery{Delivery: d, m: t.m, env: env}, nil
}

type countingDelivery struct {
	mail.Delivery
	m     *metrics
	env   *mail.Envelope
	n     int
	rcpts []string
}

func (d *countingDelivery) AddRecipient(ctx context.Context, rcpt string) error {
	err := d.Delivery.AddRecipient(ctx, rcpt)
	if err == nil {
		d.n++
		d.rcpts = append(d.rcpts, rcpt)
	}
	return err
}

// BodyNonAtomic passes the per-recipient statuses of the local Delivery
// through, so that the router can fail one mailbox alone; only the
// recipients whose copy is ready are counted.
func (d *countingDelivery) BodyNonAtomic(ctx context.Context, status mail.StatusCollector, body mail.Body) {
	pd, ok := d.Delivery.(mail.PartialDelivery)
	if !ok {
		err := d.Delivery.Body(ctx, body)
		for _, r := range d.rcpts {
			status.SetStatus(r, err)
		}
		if err != nil {
			d.n = 0
		}
		return
	}
	d.n = 0
	pd.BodyNonAtomic(ctx, countingStatus{d: d, next: status}, body)
}

// Withdraw passes the router's withdrawal of one recipient through, and
// counts it out.
func (d *countingDelivery) Withdraw(ctx context.Context, rcpt string) error {
	w, ok := d.Delivery.(mail.Withdrawer)
	if !ok {
		return errors.New("fullserver: delivery cannot withdraw a recipient")
	}
	if err := w.Withdraw(ctx, rcpt); err != nil {
		return err
	}
	d.n--
	return nil
}

// countingStatus counts the recipients given a nil status.
type countingStatus struct {
	d    *countingDelivery
	next mail.StatusCollector
}

func (c countingStatus) SetStatus(rcpt string, err error) {
	if err == nil {
		c.d.n++
	}
	c.next.SetStatus(rcpt, err)
}

func (d *countingDelivery) Commit(ctx context.Context) error {
	if err := d.Delivery.Commit(ctx); err != nil {
		return err
	}
	d.m.delivered.Add(float64(d.n))
	if !d.env.Received.IsZero() {
		d.m.latency.Observe(time.Since(d.env.Received).Seconds())
	}
	return nil
}

// Mailboxes passes the local Delivery's final mailboxes through, for the
// router's delivery log line.
func (d *countingDelivery) Mailboxes(rcpt string) (user string, folders []string) {
	if mb, ok := d.Delivery.(interface {
		Mailboxes(string) (string, []string)
	}); ok {
		return mb.Mailboxes(rcpt)
	}
	return "", nil
}
