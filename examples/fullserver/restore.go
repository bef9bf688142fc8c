package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/store"
)

// maxManifest bounds MANIFEST.json: a million files take about 150 MB.
const maxManifest = 1 << 30

// cmdRestore runs "restore DIR": it checks DIR's manifest (every file
// there, with its size and checksum) and puts the backup into the data
// directory, which must not hold a directory, mail or queue yet. Without
// -config and without DATA/fullserver.toml, the backup's configuration
// is restored too and used.
func cmdRestore(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("restore: want DIR: %w", errUsage)
	}
	src := args[0]
	m, err := readManifest(src)
	if err != nil {
		return err
	}
	files := map[string]manifestFile{}
	for _, f := range m.Files {
		files[f.Path] = f
	}
	if f, ok := files["fullserver.toml"]; ok && e.configFile == "" {
		if path, _ := config.FindFile("", e.dataDir); path == "" {
			if err := os.MkdirAll(e.dataDir, 0o700); err != nil {
				return err
			}
			if err := copyFileTo(filepath.Join(src, f.Path), filepath.Join(e.dataDir, "fullserver.toml")); err != nil {
				return err
			}
		}
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if m.Driver != cfg.Store.Driver {
		return fmt.Errorf("restore: the backup's directory is %s, the configuration's store.driver is %s", m.Driver, cfg.Store.Driver)
	}
	parts := backupParts(cfg)
	for _, p := range parts {
		if !emptyOrMissing(p.path) {
			return fmt.Errorf("restore: %s is not empty; restore into a new data directory", p.path)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	var restored []string
	switch cfg.Store.Driver {
	case store.DriverSQLite:
		db := cfg.StoreDSN()
		if _, err := os.Stat(db); err == nil {
			return fmt.Errorf("restore: %s exists; restore into a new data directory", db)
		}
		if err := copyFileTo(filepath.Join(src, "mailagent.db"), db); err != nil {
			return err
		}
		restored = append(restored, db)
	default:
		load := "mariadb DATABASE < " + filepath.Join(src, "directory.sql")
		if cfg.Store.Driver == "postgres" {
			load = "psql -d DSN -f " + filepath.Join(src, "directory.sql")
		}
		fmt.Fprintf(e.stderr, "the %s directory is not restored by this command; load its dump into an empty database with:\n  %s\n", cfg.Store.Driver, load)
	}
	for _, p := range parts {
		if err := restoreTree(filepath.Join(src, p.name), p.name, p.path, files); err != nil {
			return err
		}
		restored = append(restored, p.path)
	}
	// A restore run as root for a server that drops to a user hands the
	// files to that user, who must be able to write them.
	if os.Geteuid() == 0 && cfg.User != "" {
		uid, gid, err := lookupIDs(cfg.User, cfg.Group)
		if err != nil {
			return err
		}
		for _, p := range append(restored, cfg.DataDir) {
			if err := chownTree(p, uid, gid); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(e.stderr, "restored %d files from %s (made %s) into %s\n", len(m.Files), src, m.Created.Format("2006-01-02 15:04:05Z"), cfg.DataDir)
	return nil
}

// readManifest reads DIR/MANIFEST.json and checks every file it names:
// present, of its size, and of its checksum where one is recorded.
func readManifest(dir string) (*manifest, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST.json"))
	if err != nil {
		return nil, fmt.Errorf("restore: %w (not a complete backup)", err)
	}
	defer f.Close()
	var m manifest
	d := json.NewDecoder(&limitedReader{r: f, n: maxManifest})
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("restore: MANIFEST.json: %w", err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("restore: backup layout version %d, this program reads %d", m.Version, manifestVersion)
	}
	var problems []string
	for _, mf := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(mf.Path)) {
			return nil, fmt.Errorf("restore: MANIFEST.json names %q, outside the backup", mf.Path)
		}
		p := filepath.Join(dir, filepath.FromSlash(mf.Path))
		switch {
		case mf.SHA256 != "":
			n, sum, err := fileSum(p)
			if err != nil || n != mf.Size || sum != mf.SHA256 {
				problems = append(problems, mf.Path)
			}
		default:
			st, err := os.Stat(p)
			if err != nil || st.Size() != mf.Size {
				problems = append(problems, mf.Path)
			}
		}
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 5 {
			problems, more = problems[:5], fmt.Sprintf(" and %d more", len(problems)-5)
		}
		return nil, fmt.Errorf("restore: missing or changed in the backup: %s%s", strings.Join(problems, ", "), more)
	}
	return &m, nil
}

// limitedReader is io.LimitReader that fails instead of ending early.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// restoreTree recreates the backup's tree src (named name in the
// manifest) at dst: every directory (a folder's empty tmp/ too), and the
// files the manifest lists, message files hard-linked when they can be.
func restoreTree(src, name, dst string, files map[string]manifestFile) error {
	if _, err := os.Stat(src); errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		mf, ok := files[filepath.ToSlash(filepath.Join(name, rel))]
		if !ok {
			return nil // not part of the backup as made
		}
		if mf.SHA256 == "" {
			// A message file: immutable, shared with the backup.
			if err := os.Link(path, to); err == nil {
				return nil
			}
		}
		return copyFileTo(path, to)
	})
}

// emptyOrMissing reports whether dir does not exist or has no entries.
func emptyOrMissing(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, iofs.ErrNotExist) || (err == nil && len(entries) == 0)
}

// chownTree gives path and everything under it to uid:gid.
func chownTree(path string, uid, gid int) error {
	err := filepath.WalkDir(path, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	return err
}
