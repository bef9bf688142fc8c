package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/store"
)

// maxPasswordLine bounds the password line read from standard input.
const maxPasswordLine = 4096

// env is what every command shares: the flags, the configuration, the
// directory (opened on first use) and the standard streams.
type env struct {
	dataDir    string
	dataSet    bool // -data given explicitly
	configFile string
	logFormat  string // -log-format, "" for the configuration's
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer

	cfg     *config.Config
	cfgPath string // the file cfg was read from, "" for the defaults
	st      *store.SQL
}

// config loads the configuration file (-config, or DATA/fullserver.toml
// when present) over the defaults. An explicit -data wins over the
// file's data_dir.
func (e *env) config() (*config.Config, error) {
	if e.cfg != nil {
		return e.cfg, nil
	}
	path, err := config.FindFile(e.configFile, e.dataDir)
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	if path != "" {
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if e.dataSet || path == "" {
		cfg.DataDir = e.dataDir
	}
	e.cfg, e.cfgPath = cfg, path
	return cfg, nil
}

// existing returns an error unless path exists, or -data named a data
// directory that exists: a command must not create a directory where the
// server, reading another configuration or a mistyped -data, will never
// look (only the server's first start creates one). The error says which
// configuration was read.
func (e *env) existing(path string) error {
	if e.dataSet {
		fi, err := os.Stat(e.dataDir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("no directory exists at %s (-data): start the server once with it, or give the data directory it uses", e.dataDir)
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("-data %s is not a directory", e.dataDir)
		}
		return nil
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	read := "no configuration file found (looked at -config, $MAILAGENT_CONFIG, " +
		filepath.Join(e.dataDir, "fullserver.toml") + ", " + config.SystemFile + ")"
	if e.cfgPath != "" {
		read = "configuration " + e.cfgPath + " read"
	}
	return fmt.Errorf("%s, and no directory exists at %s: start the server once with this configuration, or give -config FILE or -data DIR", read, path)
}

// store opens the directory; the SQLite database is created only in an
// existing data directory that -data named (else existing refuses).
func (e *env) store(ctx context.Context) (*store.SQL, error) {
	if e.st != nil {
		return e.st, nil
	}
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	if cfg.Store.Driver == store.DriverSQLite {
		if err := e.existing(cfg.StoreDSN()); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, err
		}
	}
	st, err := openDirectory(ctx, cfg, &store.Options{Resolve: resolveOptions(cfg), QueryTimeout: cfg.Store.QueryTimeout.Duration})
	if err != nil {
		return nil, err
	}
	e.st = st
	return st, nil
}

// resolveOptions are the recipient resolution settings of cfg, the same
// for the server and the commands.
func resolveOptions(cfg *config.Config) store.ResolveOptions {
	if cfg.Store.SubaddressDelimiter == "" {
		return store.ResolveOptions{NoSubaddress: true}
	}
	return store.ResolveOptions{Delimiters: cfg.Store.SubaddressDelimiter}
}

func (e *env) close() {
	if e.st != nil {
		e.st.Close()
	}
}

// readPassword reads a new password: prompted twice without echo when
// standard input is a terminal, else the first line of standard input.
func (e *env) readPassword() (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "New password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(e.stderr, "Retype password: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("passwords do not match")
		}
		return checkPassword(string(p1))
	}
	r := bufio.NewReaderSize(io.LimitReader(e.stdin, maxPasswordLine+2), maxPasswordLine+2)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password: %w", err)
	}
	if !strings.HasSuffix(line, "\n") && len(line) > maxPasswordLine {
		return "", errors.New("password line too long")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	return checkPassword(line)
}

func checkPassword(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty password (give it on standard input, one line)")
	}
	if strings.ContainsAny(p, "\x00\r\n") {
		return "", errors.New("password contains a control character")
	}
	return p, nil
}
