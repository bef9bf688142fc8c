package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// The quota a user has is the directory's (quota_bytes and
// quota_messages, filled from a seed quota column by "migrate"), else the
// limit line of the Maildir's maildirsize (Dovecot's), else none: the
// server delivers with the directory's, and maildir keeps the recorded
// one when the directory has none. "user quota ADDRESS" shows both and
// the usage; setting it writes both, so that 0 0 removes a limit that
// Dovecot had recorded.

// userMaildir opens the Maildir of address when it exists (nil, nil when
// the user has received nothing yet).
func (e *env) userMaildir(ctx context.Context, st *store.SQL, address string) (*maildir.Store, *maildir.Maildir, error) {
	u, err := st.LookupUser(ctx, address)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := e.config()
	if err != nil {
		return nil, nil, err
	}
	base := cfg.Path(cfg.Maildir.Base, "mail")
	p := u.Maildir
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	ms, err := maildir.New(base, &maildir.Options{Hostname: cfg.Hostname})
	if err != nil {
		return nil, nil, err
	}
	md, err := ms.Open(ctx, u.Maildir)
	if err != nil {
		ms.Close()
		return nil, nil, err
	}
	return ms, md, nil
}

// setMaildirQuota records limit in the user's maildirsize, if the
// Maildir exists.
func (e *env) setMaildirQuota(ctx context.Context, st *store.SQL, address string, limit maildir.Quota) error {
	ms, md, err := e.userMaildir(ctx, st, address)
	if err != nil || md == nil {
		return err
	}
	defer ms.Close()
	defer md.Close()
	return md.SetQuota(ctx, limit)
}

// showQuota prints the user's limits and usage, one "key: value" a line.
func (e *env) showQuota(ctx context.Context, st *store.SQL, address string) error {
	u, err := st.LookupUser(ctx, address)
	if err != nil {
		return err
	}
	eff := maildir.Quota{Bytes: u.QuotaBytes, Messages: u.QuotaMessages}
	source := "directory"
	var usage *maildir.QuotaUsage
	ms, md, err := e.userMaildir(ctx, st, address)
	if err != nil {
		return err
	}
	if md != nil {
		defer ms.Close()
		defer md.Close()
		q, err := md.Quota(ctx)
		if err != nil {
			return err
		}
		usage = &q
		if eff == (maildir.Quota{}) && q.Limit != (maildir.Quota{}) {
			eff, source = q.Limit, "maildirsize"
		}
	}
	if eff == (maildir.Quota{}) {
		source = "none"
	}
	fmt.Fprintf(e.stdout, "user: %s\nlimit: %s (from %s)\ndirectory: %s\n", u.Address, quotaText(eff), source,
		quotaText(maildir.Quota{Bytes: u.QuotaBytes, Messages: u.QuotaMessages}))
	if usage != nil {
		fmt.Fprintf(e.stdout, "maildirsize: %s\nused: %d bytes, %d messages\n", quotaText(usage.Limit), usage.Bytes, usage.Messages)
	}
	return nil
}

// quotaText is a limit as "N bytes, M messages", 0 meaning no limit.
func quotaText(q maildir.Quota) string {
	if q == (maildir.Quota{}) {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes, %d messages (0: no limit)", q.Bytes, q.Messages)
}
