package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Privileged ports for an unprivileged process. Started as root (a
// classic init script, a container's entrypoint), the server opens every
// listener first, the LMTP socket with its owner, then becomes
// cfg.User/cfg.Group before it opens the directory, the Maildirs, the
// queue or any key: nothing it writes belongs to root, and a compromised
// process cannot take the machine. Under systemd the unit starts it as
// the user with CAP_NET_BIND_SERVICE instead, and this is a no-op.

// prebind opens every configured listener, to be served later by the
// setup that owns it (listen hands them out by name).
func (s *server) prebind() error {
	l := s.cfg.Listen
	s.prebound = map[string]net.Listener{}
	s.onStop(func(ctx context.Context) error {
		// Listeners a failed start never handed out.
		for _, ln := range s.prebound {
			ln.Close()
		}
		return nil
	})
	for _, b := range []struct{ name, addr string }{
		{"mx", l.MX}, {"submission", l.Submission}, {"submissions", l.Submissions}, {"lmtp", l.LMTP},
		{"imap", l.IMAP}, {"imaps", l.IMAPS}, {"pop3", l.POP3}, {"pop3s", l.POP3S},
		{"metrics", l.Metrics}, {"https", l.HTTPS}, {"http", l.HTTP}, {"managesieve", l.ManageSieve},
	} {
		if b.addr == "" {
			continue
		}
		ln, err := s.listen(b.name, b.addr)
		if err != nil {
			return err
		}
		s.prebound[b.name] = ln
	}
	return nil
}

// dropPrivileges binds the listeners and becomes cfg.User and cfg.Group
// when the process runs as root and a user is configured. Not root, the
// configured user must be the one running already.
func (s *server) dropPrivileges() error {
	if s.cfg.User == "" {
		return nil
	}
	uid, gid, err := lookupIDs(s.cfg.User, s.cfg.Group)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		if os.Geteuid() != uid {
			return fmt.Errorf("user: running as uid %d, which cannot become %q (uid %d); start as root or as that user", os.Geteuid(), s.cfg.User, uid)
		}
		return nil
	}
	if err := s.prebind(); err != nil {
		return err
	}
	// Supplementary groups first (root's would stay otherwise), then the
	// group, then the user: after Setuid nothing else may change. Go
	// applies each to every thread of the process.
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("user: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("user: setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("user: setuid %d: %w", uid, err)
	}
	s.log.Info("dropped privileges", "uid", uid, "gid", gid)
	return nil
}

// lookupIDs resolves a user and group, each a name or a number; an
// empty group is the user's primary group.
func lookupIDs(userName, groupName string) (uid, gid int, err error) {
	u, err := user.Lookup(userName)
	if err != nil {
		if n, nerr := strconv.Atoi(userName); nerr == nil && n >= 0 {
			u = &user.User{Uid: userName, Gid: strconv.Itoa(n)}
		} else {
			return 0, 0, fmt.Errorf("user: %q: %w", userName, err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if groupName != "" {
		if g, err := user.LookupGroup(groupName); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else if n, nerr := strconv.Atoi(groupName); nerr == nil && n >= 0 {
			gid = n
		} else {
			return 0, 0, fmt.Errorf("group: %q: %w", groupName, err)
		}
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("user: %q is root; name the unprivileged user mail is stored as", userName)
	}
	return uid, gid, nil
}
