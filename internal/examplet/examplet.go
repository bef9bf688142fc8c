// Package examplet gives runnable Example functions the testing.TB that
// test helpers (mailtest.NewServer, outboundtest.Start) take, so that the
// examples run as documentation tests: an example has no *testing.T.
package examplet

import (
	"fmt"
	"os"
	"testing"
)

// T implements the testing.TB methods the helpers call; a failure panics,
// which fails the example. Call Done when the example ends to run the
// cleanups, last registered first, as testing does.
type T struct {
	testing.TB
	cleanups []func()
}

// Helper does nothing: there is no test log to attribute lines in.
func (t *T) Helper() {}

// Cleanup registers f to run at Done.
func (t *T) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

// Fatal panics with its arguments.
func (t *T) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// Fatalf panics with the formatted message.
func (t *T) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// TempDir makes a directory removed at Done.
func (t *T) TempDir() string {
	d, err := os.MkdirTemp("", "mailagent-example")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Done runs the registered cleanups, last first.
func (t *T) Done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}
