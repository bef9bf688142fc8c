//go:build !linux

package maildir

import (
	"os"
	"time"
)

// Unnamed files (O_TMPFILE) are a Linux feature: elsewhere deliveries
// always go through tmp/.

func openAnon(dir string) (*os.File, error) { return nil, errAnonUnsupported }

func anonUnsupported(err error) bool { return false }

func linkAnon(f *os.File, dst string) error { return errAnonUnsupported }

func chtimesAnon(f *os.File, t time.Time) error { return errAnonUnsupported }
