package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/store"
)

// The directory commands: domain, user, alias, transport. Each prints
// nothing on success except what list commands list, one entry a line,
// so scripts can read it.

// verb splits args into the verb and its operands, checking their number
// against want (verb → operand count; -1 for "0 or 1").
func verb(name string, args []string, want map[string]int) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%s: missing verb: %w", name, errUsage)
	}
	n, ok := want[args[0]]
	if !ok {
		return "", nil, fmt.Errorf("%s: unknown verb %q: %w", name, args[0], errUsage)
	}
	ops := args[1:]
	if (n >= 0 && len(ops) != n) || (n < 0 && len(ops) > 1) {
		return "", nil, fmt.Errorf("%s %s: wrong number of arguments: %w", name, args[0], errUsage)
	}
	return args[0], ops, nil
}

func cmdDomain(ctx context.Context, e *env, args []string) error {
	v, ops, err := verb("domain", args, map[string]int{"add": 1, "del": 1, "list": 0})
	if err != nil {
		return err
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	switch v {
	case "add":
		return st.AddDomain(ctx, ops[0])
	case "del":
		return st.RemoveDomain(ctx, ops[0])
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
	v, ops, err := verb("user", args, map[string]int{
		"add": 1, "del": 1, "passwd": 1, "disable": 1, "enable": 1, "list": -1, "quota": 3,
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
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		if v == "passwd" {
			return st.SetPassword(ctx, ops[0], hash)
		}
		return st.AddUser(ctx, &store.User{Address: ops[0], PasswordHash: hash})
	case "del":
		return st.RemoveUser(ctx, ops[0])
	case "disable", "enable":
		return st.SetDisabled(ctx, ops[0], v == "disable")
	case "quota":
		b, err1 := strconv.ParseInt(ops[1], 10, 64)
		m, err2 := strconv.ParseInt(ops[2], 10, 64)
		if err1 != nil || err2 != nil || b < 0 || m < 0 {
			return fmt.Errorf("user quota: BYTES and MESSAGES must be numbers ≥ 0: %w", errUsage)
		}
		return st.SetQuota(ctx, ops[0], b, m)
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
		return st.AddForwarding(ctx, ops[0], dests)
	case "del":
		return st.RemoveForwarding(ctx, ops[0])
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
		return st.SetTransport(ctx, ops[0], ops[1])
	case "del":
		return st.RemoveTransport(ctx, ops[0])
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
