package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/internal/safeio"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// "backup DIR" copies a data directory while the server runs, and
// "restore DIR" puts a copy back into an empty one. The layout of DIR:
//
//	MANIFEST.json     what is there, with sizes and checksums
//	mailagent.db      the SQLite directory (VACUUM INTO: one transaction)
//	directory.sql     or the MySQL/PostgreSQL dump (mariadb-dump, pg_dump)
//	fullserver.toml   the configuration file in use
//	mail/ queue/ dkim/ tls/
//
// Message files never change once written (a flag change renames them),
// so they are hard-linked when DIR is on the same file system: a backup
// of a large store is quick and takes little room. The files a folder
// changes in place (dovecot-uidlist, dovecot-keywords, maildirsize,
// mailagent.index and its log) are copied under the folder's
// dovecot-uidlist lock, with the listing of its messages, so UIDs, flags
// and files agree.

// manifestVersion is the layout version restore understands.
const manifestVersion = 1

// manifest describes a backup.
type manifest struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname"`
	// Driver is the directory's backend; for mysql and postgres the
	// directory is in directory.sql, loaded by the administrator.
	Driver string         `json:"driver"`
	Files  []manifestFile `json:"files"`
}

// manifestFile is one file of a backup. Message files are recorded by
// size only: reading every message to checksum it would cost what the
// hard links save.
type manifestFile struct {
	Path   string `json:"path"` // slash-separated, relative to the backup
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// backupPart is one tree of the data directory: where it is, and its
// name in the backup.
type backupPart struct{ name, path string }

// backupParts are the trees a backup holds, by the configuration.
func backupParts(cfg *config.Config) []backupPart {
	return []backupPart{
		{"mail", cfg.Path(cfg.Maildir.Base, "mail")},
		{"queue", cfg.Path(cfg.Queue.Dir, "queue")},
		{"dkim", cfg.Path(cfg.DKIM.KeyDir, "dkim")},
		{"tls", filepath.Join(cfg.DataDir, "tls")},
		{"acme", filepath.Join(cfg.DataDir, "acme")},
	}
}

// cmdBackup runs "backup DIR".
func cmdBackup(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("backup: want DIR: %w", errUsage)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	dst := args[0]
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("backup: %w (DIR must not exist yet)", err)
	}
	b := &backup{dst: dst, host: cfg.Hostname, m: manifest{
		Version: manifestVersion, Created: time.Now().UTC(), Hostname: cfg.Hostname, Driver: cfg.Store.Driver,
	}}
	// The directory first: every user whose mail follows is in it.
	if err := b.directory(ctx, cfg); err != nil {
		return err
	}
	if path, _ := config.FindFile(e.configFile, e.dataDir); path != "" {
		if err := b.copyFile(path, "fullserver.toml", true); err != nil {
			return err
		}
	}
	for _, p := range backupParts(cfg) {
		if err := b.tree(ctx, p); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(b.m, "", "  ")
	if err != nil {
		return err
	}
	// The manifest last, fsynced: a backup without one was cut short.
	if err := safeio.WriteFile(filepath.Join(dst, "MANIFEST.json"), data, 0o600, safeio.NoReplace()); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "backup of %s in %s: %d files (%d message files hard-linked)\n",
		cfg.DataDir, dst, len(b.m.Files), b.linked)
	return nil
}

// backup is one backup being made.
type backup struct {
	dst, host string
	m         manifest
	linked    int
	// copyMessages copies message files instead of linking them, as
	// happens across file systems (the benchmark's baseline).
	copyMessages bool
}

// directory saves the user directory: SQLite through VACUUM INTO (a
// consistent copy made in one read transaction, while the server
// writes), MySQL and PostgreSQL through their own dump tools.
func (b *backup) directory(ctx context.Context, cfg *config.Config) error {
	switch cfg.Store.Driver {
	case store.DriverSQLite:
		src := cfg.StoreDSN()
		db, err := sql.Open("sqlite", src+"?_busy_timeout=10000")
		if err != nil {
			return err
		}
		defer db.Close()
		abs, err := filepath.Abs(filepath.Join(b.dst, "mailagent.db"))
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
			return fmt.Errorf("backup: the SQLite directory %s: %w", src, err)
		}
		return b.record("mailagent.db", abs, true)
	case "mysql":
		return b.dump(ctx, "directory.sql", mysqlDumpCommand(ctx, cfg.Store.DSN))
	case "postgres":
		// pg_dump takes the same URL or key=value connection string; it
		// dumps in one repeatable-read transaction.
		return b.dump(ctx, "directory.sql", func(out string) (*exec.Cmd, error) {
			return exec.CommandContext(ctx, "pg_dump", "--no-owner", "--file", out, "--dbname", cfg.Store.DSN), nil
		})
	}
	return fmt.Errorf("backup: store driver %q", cfg.Store.Driver)
}

// mysqlDumpCommand returns the mariadb-dump of the directory database
// in one consistent-read transaction (InnoDB), the password passed in
// the environment rather than on the command line others can read.
func mysqlDumpCommand(ctx context.Context, dsn string) func(string) (*exec.Cmd, error) {
	return func(out string) (*exec.Cmd, error) {
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("store.dsn: %w", err)
		}
		args := []string{"--single-transaction", "--routines", "--result-file=" + out, "--user=" + c.User}
		switch c.Net {
		case "unix":
			args = append(args, "--socket="+c.Addr)
		default:
			host, port, err := net.SplitHostPort(c.Addr)
			if err != nil {
				host, port = c.Addr, "3306"
			}
			args = append(args, "--host="+host, "--port="+port, "--protocol=tcp")
		}
		tool := "mariadb-dump"
		if _, err := exec.LookPath(tool); err != nil {
			tool = "mysqldump"
		}
		cmd := exec.CommandContext(ctx, tool, append(args, c.DBName)...)
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+c.Passwd)
		return cmd, nil
	}
}

// dump runs a database's dump tool into name.
func (b *backup) dump(ctx context.Context, name string, command func(out string) (*exec.Cmd, error)) error {
	out := filepath.Join(b.dst, name)
	cmd, err := command(out)
	if err != nil {
		return err
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("backup: %s: %v: %s", filepath.Base(cmd.Path), err, oneLine(string(msg)))
	}
	return b.record(name, out, true)
}

// tree copies one part of the data directory; a part that does not
// exist (no queue yet, no DKIM key) is left out.
func (b *backup) tree(ctx context.Context, p backupPart) error {
	if _, err := os.Stat(p.path); errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(p.path, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil // removed meanwhile (a folder deleted, a queue file sent)
			}
			return err
		}
		rel, _ := filepath.Rel(p.path, path)
		name := filepath.ToSlash(filepath.Join(p.name, rel))
		switch {
		case d.IsDir():
			if isMaildirFolder(path) {
				if err := b.folder(ctx, path, name); err != nil {
					return err
				}
			}
			if base := d.Name(); path != p.path && (base == "cur" || base == "new" || base == "tmp") && isMaildirFolder(filepath.Dir(path)) {
				return iofs.SkipDir // done by folder; tmp holds nothing finished
			}
			return os.MkdirAll(filepath.Join(b.dst, filepath.FromSlash(name)), 0o700)
		case d.Type().IsRegular():
			if isMaildirFolder(filepath.Dir(path)) {
				return nil // done by folder, under its lock
			}
			err := b.copyFile(path, name, true)
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		return nil // sockets, symlinks
	})
}

// isMaildirFolder reports whether dir is a Maildir folder (has cur/).
func isMaildirFolder(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && st.IsDir()
}

// folder saves one Maildir folder under its dovecot-uidlist lock: its
// state files copied, its messages linked.
func (b *backup) folder(ctx context.Context, dir, name string) error {
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	unlock, err := maildir.LockFolder(lctx, dir, b.host)
	cancel()
	if err != nil {
		return fmt.Errorf("backup: locking %s: %w", dir, err)
	}
	defer unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		n := en.Name()
		if !en.Type().IsRegular() || strings.HasSuffix(n, ".lock") {
			continue // the lock we hold, the POP3 session lock
		}
		if err := b.copyFile(filepath.Join(dir, n), name+"/"+n, true); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(b.dst, filepath.FromSlash(name), sub), 0o700); err != nil {
			return err
		}
	}
	for _, sub := range []string{"cur", "new"} {
		if err := b.messages(dir, name, sub); err != nil {
			return err
		}
	}
	return nil
}

// messages links (or copies) every message file of a folder's cur/ or
// new/. A file renamed meanwhile (a flag change, new/ to cur/) is looked
// for again by its unique part, before the flags, in both.
func (b *backup) messages(dir, name, sub string) error {
	entries, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		return err
	}
	for _, en := range entries {
		if !en.Type().IsRegular() {
			continue
		}
		err := b.linkMessage(filepath.Join(dir, sub, en.Name()), name+"/"+sub+"/"+en.Name())
		if errors.Is(err, iofs.ErrNotExist) {
			err = b.renamed(dir, name, en.Name())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// renamed saves a message file moved since it was listed under its new
// name; one expunged meanwhile is left out.
func (b *backup) renamed(dir, name, old string) error {
	key, _, _ := strings.Cut(old, ":")
	for _, sub := range []string{"cur", "new"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, en := range entries {
			if k, _, _ := strings.Cut(en.Name(), ":"); k == key {
				return b.linkMessage(filepath.Join(dir, sub, en.Name()), name+"/"+sub+"/"+en.Name())
			}
		}
	}
	return nil
}

// linkMessage hard-links a message file into the backup, or copies it
// when the backup is on another file system.
func (b *backup) linkMessage(src, name string) error {
	dst := filepath.Join(b.dst, filepath.FromSlash(name))
	if b.copyMessages {
		return b.copyFile(src, name, false)
	}
	if err := os.Link(src, dst); err == nil {
		b.linked++
		return b.record(name, dst, false)
	} else if errors.Is(err, iofs.ErrNotExist) {
		return err
	} else if errors.Is(err, iofs.ErrExist) {
		// Saved already: renamed found it under this name before the
		// listing of its directory came to it.
		return nil
	}
	return b.copyFile(src, name, false)
}

// copyFile copies src into the backup as name, fsynced, and records it
// (with its checksum when sum).
func (b *backup) copyFile(src, name string, sum bool) error {
	dst := filepath.Join(b.dst, filepath.FromSlash(name))
	if err := copyFileTo(src, dst); err != nil {
		return err
	}
	return b.record(name, dst, sum)
}

// record adds the file at path to the manifest.
func (b *backup) record(name, path string, sum bool) error {
	f := manifestFile{Path: name}
	var err error
	if sum {
		f.Size, f.SHA256, err = fileSum(path)
	} else {
		var st os.FileInfo
		if st, err = os.Stat(path); err == nil {
			f.Size = st.Size()
		}
	}
	if err != nil {
		return err
	}
	b.m.Files = append(b.m.Files, f)
	return nil
}

func fileSum(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// copyFileTo copies src to dst (created, mode 0600), fsynced. It streams
// rather than going through safeio.WriteFile, which holds the content in
// memory, and a backup is complete only once its MANIFEST, written last
// through safeio, exists.
func copyFileTo(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
