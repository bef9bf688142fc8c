// Package unixsock creates Unix-domain listening sockets whose mode and
// owner are set before any client can reach them. A socket's
// permissions are the trust boundary of a protocol without
// authentication (LMTP, as Dovecot's lmtp unix_listener): a socket that
// was briefly open to everyone, or that kept the umask's mode, would let
// any local user hand over mail.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// Options are the socket file's permissions.
type Options struct {
	// Mode is the socket file's permission bits; 0 means 0600 (the
	// server's user only).
	Mode os.FileMode
	// Owner and Group name the socket's user and group, by name or
	// number; "" leaves it as created (the server's user and group).
	// Changing the owner needs the privilege to.
	Owner, Group string
}

// Listen listens on a Unix socket at path with the mode and owner of
// opts. The socket is created in a private directory (mode 0700) beside
// path, given its mode and owner there, and only then renamed to path,
// so no client connects before its permissions hold. A socket left at
// path by an earlier run is replaced; any other kind of file is an
// error. Closing the listener removes the socket.
func Listen(path string, opts Options) (net.Listener, error) {
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = 0o600
	}
	uid, err := lookupID(opts.Owner, func(n string) (string, error) {
		u, err := user.Lookup(n)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
	if err != nil {
		return nil, fmt.Errorf("unixsock: owner %q: %w", opts.Owner, err)
	}
	gid, err := lookupID(opts.Group, func(n string) (string, error) {
		g, err := user.LookupGroup(n)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
	if err != nil {
		return nil, fmt.Errorf("unixsock: group %q: %w", opts.Group, err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("unixsock: %s exists and is not a socket", path)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".sock")
	if err != nil {
		return nil, fmt.Errorf("unixsock: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("unixsock: %w", err)
	}
	// The socket moves: Close removes it at its final path (see
	// listener.Close), not at tmp.
	ln.SetUnlinkOnClose(false)
	err = os.Chmod(tmp, mode)
	if err == nil && (uid >= 0 || gid >= 0) {
		err = os.Lchown(tmp, uid, gid)
	}
	if err == nil {
		// A plain rename, not safeio: the rename is for atomicity (no
		// client sees the socket before its permissions are set); a
		// socket holds no data, and is made anew at every start.
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("unixsock: %w", err)
	}
	return &listener{UnixListener: ln, path: path}, nil
}

// lookupID turns a user or group given by number or name into its
// number; "" is -1, which os.Lchown leaves unchanged.
func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if s == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, errors.New("negative id")
		}
		return n, nil
	}
	id, err := byName(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}

// listener removes its socket file once closed.
type listener struct {
	*net.UnixListener
	path string
}

func (l *listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	if err == nil {
		if fi, e := os.Lstat(l.path); e == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(l.path)
		}
	}
	return err
}
