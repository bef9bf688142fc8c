package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// The directory commands: domain, user, alias, transport. Each prints
// nothing on success except what list commands list, one entry a line,
// so scripts can read it.

// verb splits args into the verb and its operands, checking their number
// against want (verb → operand count; -1 for "0 or 1", -3 for "1 or 3").
func verb(name string, args []string, want map[string]int) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%s: missing verb: %w", name, errUsage)
	}
	n, ok := want[args[0]]
	if !ok {
		return "", nil, fmt.Errorf("%s: unknown verb %q: %w", name, args[0], errUsage)
	}
	ops := args[1:]
	if (n >= 0 && len(ops) != n) || (n == -1 && len(ops) > 1) || (n == -3 && len(ops) != 1 && len(ops) != 3) {
		return "", nil, fmt.Errorf("%s %s: wrong number of arguments: %w", name, args[0], errUsage)
	}
	return args[0], ops, nil
}

func cmdDomain(ctx context.Context, e *env, args []string) error {
	v, ops, err := verb("domain", args, map[string]int{"add": 1, "del": 1, "list": 0, "host": 2})
	if err != nil {
		return err
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	switch v {
	case "add":
		return e.applied(ctx, changedDirectory, st.AddDomain(ctx, ops[0]))
	case "del":
		return e.applied(ctx, changedDirectory, st.RemoveDomain(ctx, ops[0]))
	case "host":
		return e.applied(ctx, changedDirectory, st.SetDomainHost(ctx, ops[0], ops[1]))
	}
	ds, err := st.ListDomains(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		fmt.Fprintln(e.stdout, d)
	}
	return nil
}

func cmdUser(ctx context.Context, e *env, args []string) error {
	force := false
	if len(args) > 0 && (args[0] == "add" || args[0] == "passwd") {
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
			f := a == "-force" || a == "--force"
			force = force || f
			return f
		})
	}
	v, ops, err := verb("user", args, map[string]int{
		"add": 1, "del": 1, "passwd": 1, "disable": 1, "enable": 1, "list": -1, "quota": -3, "move": 2,
	})
	if err != nil {
		return err
	}
	// Validate the address before asking for a password.
	if v != "list" {
		if _, err := store.ParseAddress(ops[0]); err != nil {
			return err
		}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	switch v {
	case "add", "passwd":
		if v == "passwd" {
			if _, err := st.LookupUser(ctx, ops[0]); err != nil {
				return err
			}
		}
		pw, err := e.readPassword()
		if err != nil {
			return err
		}
		if !force {
			cfg, err := e.config()
			if err != nil {
				return err
			}
			if err := weakPassword(pw, ops[0], cfg.Limits.MinPasswordLength); err != nil {
				return fmt.Errorf("user %s: %w (give -force to set it anyway)", v, err)
			}
		}
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		if v == "passwd" {
			return e.applied(ctx, changedDirectory, st.SetPassword(ctx, ops[0], hash))
		}
		return e.applied(ctx, changedDirectory, st.AddUser(ctx, &store.User{Address: ops[0], PasswordHash: hash}))
	case "del":
		return e.applied(ctx, changedDirectory, st.RemoveUser(ctx, ops[0]))
	case "move":
		// The directory first: a session ended by the proxy logs in
		// again where the user now lives.
		if err := st.SetUserHost(ctx, ops[0], ops[1]); err != nil {
			return err
		}
		n, err := e.moved(ctx, ops[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: host %s, open sessions ended: %s", ops[0], ops[1], n)
		return nil
	case "disable", "enable":
		return e.applied(ctx, changedDirectory, st.SetDisabled(ctx, ops[0], v == "disable"))
	case "quota":
		if len(ops) == 1 {
			return e.showQuota(ctx, st, ops[0])
		}
		b, err1 := strconv.ParseInt(ops[1], 10, 64)
		m, err2 := strconv.ParseInt(ops[2], 10, 64)
		if err1 != nil || err2 != nil || b < 0 || m < 0 {
			return fmt.Errorf("user quota: BYTES and MESSAGES must be numbers ≥ 0: %w", errUsage)
		}
		if err := st.SetQuota(ctx, ops[0], b, m); err != nil {
			return err
		}
		return e.applied(ctx, changedDirectory, e.setMaildirQuota(ctx, st, ops[0], maildir.Quota{Bytes: b, Messages: m}))
	}
	domain := ""
	if len(ops) == 1 {
		domain = ops[0]
	}
	us, err := st.ListUsers(ctx, domain)
	if err != nil {
		return err
	}
	for _, u := range us {
		var flags []string
		if u.Disabled {
			flags = append(flags, "disabled")
		}
		if u.QuotaBytes > 0 || u.QuotaMessages > 0 {
			flags = append(flags, fmt.Sprintf("quota=%d/%d", u.QuotaBytes, u.QuotaMessages))
		}
		fmt.Fprintln(e.stdout, strings.Join(append([]string{u.Address, u.Maildir}, flags...), "\t"))
	}
	return nil
}

func cmdAlias(ctx context.Context, e *env, args []string) error {
	v, ops, err := verb("alias", args, map[string]int{"add": 2, "del": 1, "list": 0})
	if err != nil {
		return err
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	switch v {
	case "add":
		var dests []string
		for _, d := range strings.Split(ops[1], ",") {
			if d = strings.TrimSpace(d); d != "" {
				dests = append(dests, d)
			}
		}
		return e.applied(ctx, changedDirectory, st.AddForwarding(ctx, ops[0], dests))
	case "del":
		return e.applied(ctx, changedDirectory, st.RemoveForwarding(ctx, ops[0]))
	}
	fw, err := st.ListForwardings(ctx)
	if err != nil {
		return err
	}
	for _, src := range slices.Sorted(maps.Keys(fw)) {
		fmt.Fprintf(e.stdout, "%s\t%s\n", src, strings.Join(fw[src], ","))
	}
	return nil
}

func cmdTransport(ctx context.Context, e *env, args []string) error {
	v, ops, err := verb("transport", args, map[string]int{"set": 2, "del": 1, "list": 0})
	if err != nil {
		return err
	}
	if v == "set" {
		// Report a bad spec without touching the database.
		if _, err := store.ParseTransport(ops[1]); err != nil {
			return err
		}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	switch v {
	case "set":
		return e.applied(ctx, changedDirectory, st.SetTransport(ctx, ops[0], ops[1]))
	case "del":
		return e.applied(ctx, changedDirectory, st.RemoveTransport(ctx, ops[0]))
	}
	ts, err := st.ListTransports(ctx)
	if err != nil {
		return err
	}
	for _, d := range slices.Sorted(maps.Keys(ts)) {
		fmt.Fprintf(e.stdout, "%s\t%s\n", d, ts[d])
	}
	return nil
}

// weakPassword refuses a password shorter than minLen characters or equal
// (ignoring case) to the user's address or its local part: the first
// guesses of anyone trying logins.
func weakPassword(pw, address string, minLen int) error {
	if n := utf8.RuneCountInString(pw); n < minLen {
		return fmt.Errorf("password too short: %d characters, limits.min_password_length is %d", n, minLen)
	}
	local, _, _ := strings.Cut(address, "@")
	if strings.EqualFold(pw, address) || strings.EqualFold(pw, local) {
		return errors.New("password is the user's address")
	}
	return nil
}
