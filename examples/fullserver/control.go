package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// What an admin command changed, told to the running server over the
// control socket so that it applies the change before the command
// returns (rather than when its directory cache expires or on SIGHUP).
const (
	changedDirectory = "directory" // users, passwords, domains, aliases, transports, quotas
	changedDKIM      = "dkim"      // DKIM signing keys
)

// applied tells the running server, if any, that what changed, once err
// (the change's own result) is nil. With no server running nothing is
// needed: the next start reads the new state.
func (e *env) applied(ctx context.Context, what string, err error) error {
	if err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	_, err = controlPost(ctx, controlSocket(cfg.DataDir), "/changed", []string{what})
	var remote *remoteError
	if err != nil && !errors.As(err, &remote) {
		return nil // no server listens
	}
	return err
}

// handleChanged applies what an admin command changed: the directory
// cache is dropped (the next lookup reads the database) or the DKIM keys
// are read again.
func (s *server) handleChanged(w http.ResponseWriter, r *http.Request) {
	var what []string
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&what); err != nil || len(what) != 1 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	switch what[0] {
	case changedDirectory:
		s.dir.ClearCache()
	case changedDKIM:
		if s.cfg.DKIM.Sign {
			if err := s.signer.load(s.cfg.Path(s.cfg.DKIM.KeyDir, "dkim")); err != nil {
				s.log.Error("DKIM keys not reloaded", "err", err)
				http.Error(w, "the server could not load the DKIM keys; see its log", http.StatusConflict)
				return
			}
		}
	default:
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.log.Info("applied an admin change", "changed", what[0])
}

// controlPost posts args as JSON to path on the control socket sock.
// A server that is not running is an error that is not a *remoteError.
func controlPost(ctx context.Context, sock, path string, args []string) (string, error) {
	client := controlClient(sock)
	body, _ := json.Marshal(args)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://control"+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &remoteError{string(bytes.TrimSpace(out))}
	}
	return string(out), nil
}
