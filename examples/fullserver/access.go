package main

import (
	"context"
	"io"
	"os"

	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/internal/stack"
	"github.com/mailagent/mailagent/maildir/sieve/managesieve"
	"github.com/mailagent/mailagent/pop3"
	"github.com/mailagent/mailagent/smtp/local"
)

// accessListeners adds the mail access servers that listen: IMAP and
// POP3, each with STARTTLS/STLS on its plain port and TLS from the first
// byte on the other, and ManageSieve (STARTTLS) when configured.
func (s *server) accessListeners(sc *stack.Config) error {
	cfg := s.cfg
	moved := s.learnFromMoves()
	for _, l := range []struct {
		name, addr string
		implicit   bool
	}{{"imap", cfg.Listen.IMAP, false}, {"imaps", cfg.Listen.IMAPS, true}} {
		if l.addr == "" {
			continue
		}
		ln, err := s.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		sc.IMAP = append(sc.IMAP, stack.Listener[imap.Options]{Name: l.name, Listener: ln, Options: imap.Options{
			ImplicitTLS:       l.implicit,
			AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
			MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
			IdleTimeout:       cfg.Limits.IMAPIdleTimeout.Duration,
			LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
			MinDataRate:       cfg.Limits.MinDataRate,
			DataRateGrace:     cfg.Limits.DataRateGrace.Duration,
			AppendLimit:       uint32(min(cfg.Limits.MaxMessageBytes, 1<<32-1)),
			Moved:             moved,
			NamespacePrefix:   cfg.IMAP.NamespacePrefix,
		}})
	}
	for _, l := range []struct {
		name, addr string
		implicit   bool
	}{{"pop3", cfg.Listen.POP3, false}, {"pop3s", cfg.Listen.POP3S, true}} {
		if l.addr == "" {
			continue
		}
		ln, err := s.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		sc.POP3 = append(sc.POP3, stack.Listener[pop3.Options]{Name: l.name, Listener: ln, Options: pop3.Options{
			ImplicitTLS:       l.implicit,
			AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
			MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
			IdleTimeout:       cfg.Limits.POP3IdleTimeout.Duration,
			LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
		}})
	}
	if cfg.Listen.ManageSieve != "" {
		ln, err := s.listen("managesieve", cfg.Listen.ManageSieve)
		if err != nil {
			return err
		}
		sc.ManageSieve = append(sc.ManageSieve, stack.Listener[managesieve.Options]{Name: "managesieve", Listener: ln,
			Options: managesieve.Options{
				AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
				MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
				LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
			}})
	}
	return nil
}

// learnFromMoves returns IMAP's Moved hook that teaches rspamd from the
// users' moves into and out of their junk folder, or nil when
// junk.rspamd_controller is not set. The learning runs in the
// background (local.LearnQueue, durable in DATA/learn), never in the
// IMAP reply's way.
func (s *server) learnFromMoves() func(user, from, to string, msgs []*os.File) {
	cfg := s.cfg
	if cfg.Junk.RspamdController == "" {
		return nil
	}
	// The jobs wait in DATA/learn, so a restart while rspamd is down
	// loses none.
	q := local.NewLearnQueue(&local.RspamdLearner{URL: cfg.Junk.RspamdController, Password: cfg.Junk.RspamdPassword},
		local.LearnQueueOptions{Logger: s.log, Dir: cfg.Path("", "learn")})
	s.onStop(func(context.Context) error { return q.Close() })
	return func(user, from, to string, msgs []*os.File) {
		spam, learn := local.LearnFromMove(from, to, cfg.Junk.JunkFolder(user), "Trash")
		for _, f := range msgs {
			if !learn {
				f.Close()
				continue
			}
			q.Submit(local.LearnJob{User: user, Spam: spam,
				Open: func() (io.ReadCloser, error) {
					// Each attempt reads the open file from the start.
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						return nil, err
					}
					return io.NopCloser(f), nil
				},
				Done: func() { f.Close() }})
		}
	}
}
