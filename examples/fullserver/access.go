package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/maildir/sieve/managesieve"
	"github.com/mailagent/mailagent/pop3"
	"github.com/mailagent/mailagent/smtp/local"
)

// setupAccess starts the mail access servers: IMAP and POP3, each with
// STARTTLS/STLS on its plain port and TLS from the first byte on the other,
// and ManageSieve (STARTTLS) when configured.
func (s *server) setupAccess(ctx context.Context, authn *auth.Authenticator) error {
	cfg := s.cfg
	moved := s.learnFromMoves()
	for _, l := range []struct {
		name, addr string
		implicit   bool
	}{{"imap", cfg.Listen.IMAP, false}, {"imaps", cfg.Listen.IMAPS, true}} {
		if l.addr == "" {
			continue
		}
		srv, err := imap.NewServer(imap.Options{
			Store:             s.mail,
			Authenticator:     authn,
			TLSConfig:         s.tlsCfg,
			ImplicitTLS:       l.implicit,
			AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
			ConnLimiter:       s.conns,
			MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
			IdleTimeout:       cfg.Limits.IMAPIdleTimeout.Duration,
			LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
			MinDataRate:       cfg.Limits.MinDataRate,
			DataRateGrace:     cfg.Limits.DataRateGrace.Duration,
			AppendLimit:       uint32(min(cfg.Limits.MaxMessageBytes, 1<<32-1)),
			Hostname:          cfg.Hostname,
			Moved:             moved,
			Logger:            s.log,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		ln, err := s.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		s.serve(l.name, func() error { return srv.Serve(ln) }, srv.Shutdown, imap.ErrServerClosed)
	}
	for _, l := range []struct {
		name, addr string
		implicit   bool
	}{{"pop3", cfg.Listen.POP3, false}, {"pop3s", cfg.Listen.POP3S, true}} {
		if l.addr == "" {
			continue
		}
		srv, err := pop3.NewServer(pop3.Options{
			Hostname:          cfg.Hostname,
			Maildirs:          s.mail,
			Authenticator:     authn,
			TLSConfig:         s.tlsCfg,
			ImplicitTLS:       l.implicit,
			AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
			ConnLimiter:       s.conns,
			MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
			IdleTimeout:       cfg.Limits.POP3IdleTimeout.Duration,
			LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
			Logger:            s.log,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		ln, err := s.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		s.serve(l.name, func() error { return srv.Serve(ln) }, srv.Shutdown, pop3.ErrServerClosed)
	}
	if cfg.Listen.ManageSieve != "" {
		srv, err := managesieve.NewServer(managesieve.Options{
			Authenticator:     authn,
			MaildirBase:       cfg.Path(cfg.Maildir.Base, "mail"),
			TLSConfig:         s.tlsCfg,
			AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
			ConnLimiter:       s.conns,
			MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
			LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
			Logger:            s.log,
		})
		if err != nil {
			return fmt.Errorf("managesieve: %w", err)
		}
		ln, err := s.listen("managesieve", cfg.Listen.ManageSieve)
		if err != nil {
			return err
		}
		s.serve("managesieve", func() error { return srv.Serve(ln) }, srv.Shutdown, managesieve.ErrServerClosed)
	}
	return nil
}

// learnFromMoves returns IMAP's Moved hook that teaches rspamd from the
// users' moves into and out of their junk folder, or nil when
// junk.rspamd_controller is not set. The learning runs in the
// background (smtp.LearnQueue), never in the IMAP reply's way.
func (s *server) learnFromMoves() func(user, from, to string, msgs []*os.File) {
	cfg := s.cfg
	if cfg.Junk.RspamdController == "" {
		return nil
	}
	q := local.NewLearnQueue(&local.RspamdLearner{URL: cfg.Junk.RspamdController, Password: cfg.Junk.RspamdPassword},
		local.LearnQueueOptions{Logger: s.log})
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
