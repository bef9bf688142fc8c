package imap

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestShutdown(t *testing.T) {
	st := newTestStack(t)
	srv, err := NewServer(st.options())
	must(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	addr := l.Addr().String()

	idle := dial(t, addr)
	idle.login("alice@local.example")
	idle.ok("SELECT INBOX")
	idle.send("i1 IDLE")
	idle.line()
	fresh := dial(t, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, srv.Shutdown(ctx))
	for _, cl := range []*client{idle, fresh} {
		cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		rest, err := io.ReadAll(cl.r)
		if err != nil || !strings.Contains(string(rest), "* BYE") {
			t.Fatalf("at shutdown: %q %v", rest, err)
		}
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still open")
	}
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestNewServerOptions(t *testing.T) {
	st := newTestStack(t)
	if _, err := NewServer(Options{Authenticator: st.auth}); err == nil {
		t.Fatal("no Store accepted")
	}
	opts := st.options()
	opts.TLSConfig = nil
	opts.ImplicitTLS = true
	if _, err := NewServer(opts); err == nil {
		t.Fatal("ImplicitTLS without TLSConfig accepted")
	}
}
