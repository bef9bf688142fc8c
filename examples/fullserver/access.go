package main

import (
	"context"
	"fmt"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/maildir/sieve/managesieve"
	"github.com/mailagent/mailagent/pop3"
)

// setupAccess starts the mail access servers: IMAP and POP3, each with
// STARTTLS/STLS on its plain port and TLS from the first byte on the other,
// and ManageSieve (STARTTLS) when configured.
func (s *server) setupAccess(ctx context.Context, authn *auth.Authenticator) error {
	cfg := s.cfg
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
