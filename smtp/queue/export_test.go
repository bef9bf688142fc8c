package queue

import "time"

// WithClock returns opts with now as the queue's clock, for the tests
// outside the package.
func WithClock(opts Options, now func() time.Time) Options {
	opts.now = now
	return opts
}
