package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
)

// controlSocket is where a running server takes queue commands, so that
// they act on its live queue rather than on the spool under its feet.
func controlSocket(dataDir string) string { return filepath.Join(dataDir, "control.sock") }

// cmdQueue runs "queue list|show|flush|delete|hold|release": through the
// running server's control socket when it runs, else on the spool itself.
func cmdQueue(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("queue needs a subcommand: %w", errUsage)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	out, err := controlRequest(ctx, controlSocket(cfg.DataDir), args)
	if err == nil {
		_, err = io.WriteString(e.stdout, out)
		return err
	}
	var remote *remoteError
	if errors.As(err, &remote) {
		return remote
	}
	// No server runs: open the spool directly. Nothing is delivered from
	// here; flush only makes messages due for the next server start.
	if err := e.existing(cfg.Path(cfg.Queue.Dir, "queue")); err != nil {
		return err
	}
	client, err := outbound.New(outbound.Options{Hostname: cfg.Hostname})
	if err != nil {
		return err
	}
	q, err := queue.New(queue.Options{Dir: cfg.Path(cfg.Queue.Dir, "queue"), Courier: queue.Outbound(client), Hostname: cfg.Hostname})
	if err != nil {
		return err
	}
	defer q.Close()
	return queueCommand(ctx, q, args, e.stdout)
}

// queueCommand runs one queue subcommand on q, writing its report to w.
func queueCommand(ctx context.Context, q *queue.Queue, args []string, w io.Writer) error {
	sub, rest := args[0], args[1:]
	needID := func() (string, error) {
		if len(rest) != 1 {
			return "", fmt.Errorf("queue %s needs one message ID: %w", sub, errUsage)
		}
		return rest[0], nil
	}
	switch sub {
	case "list":
		if len(rest) != 0 {
			return fmt.Errorf("queue list takes no arguments: %w", errUsage)
		}
		var infos []*queue.Info
		if err := q.List(ctx, func(i *queue.Info) error {
			infos = append(infos, i)
			return nil
		}); err != nil {
			return err
		}
		writeQueueList(w, infos)
		return nil
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		i, err := q.Inspect(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "id: %s\nfrom: <%s>\narrived: %s\nsize: %d\nattempts: %d\nnext attempt: %s\nheld: %v\n",
			i.ID, i.From, i.Arrived.Format(time.RFC3339), i.Size, i.Attempts, i.NextAttempt.Format(time.RFC3339), i.Held)
		for _, r := range i.Recipients {
			fmt.Fprintf(w, "recipient: %s %s", r.Address, r.State)
			if !r.LastAttempt.IsZero() {
				fmt.Fprintf(w, " at %s", r.LastAttempt.Format(time.RFC3339))
			}
			if reason := recipientReason(r); reason != "" {
				fmt.Fprintf(w, " (%s)", reason)
			}
			fmt.Fprintln(w)
			for _, a := range r.Attempts {
				writeAttempt(w, a)
			}
		}
		return nil
	case "flush":
		var ids []string
		if len(rest) > 0 {
			ids = rest
		} else if err := q.List(ctx, func(i *queue.Info) error {
			if !i.Held {
				ids = append(ids, i.ID)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			if err := q.RetryNow(ctx, id); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
		fmt.Fprintf(w, "%d message(s) due now\n", len(ids))
		return nil
	case "hold", "release", "delete":
		id, err := needID()
		if err != nil {
			return err
		}
		op := map[string]func(context.Context, string) error{"hold": q.Hold, "release": q.Release, "delete": q.Delete}[sub]
		if err := op(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %s\n", id, map[string]string{"hold": "held", "release": "released", "delete": "deleted"}[sub])
		return nil
	}
	return fmt.Errorf("unknown queue subcommand %q: %w", sub, errUsage)
}

// writeQueueList writes infos as Postfix's "postqueue -p" does: per
// message its ID (followed by "*" while a delivery runs, "!" when held),
// size, arrival time and sender, then each recipient still pending, under
// the last reply or error that deferred it; and a total.
func writeQueueList(w io.Writer, infos []*queue.Info) {
	if len(infos) == 0 {
		fmt.Fprintln(w, "Mail queue is empty")
		return
	}
	idw := len("-Queue ID-")
	for _, i := range infos {
		idw = max(idw, len(i.ID)+1)
	}
	indent := strings.Repeat(" ", idw+1+8+1+20+2)
	fmt.Fprintf(w, "%-*s %8s %-20s  %s\n", idw, "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
	var total int64
	for _, i := range infos {
		total += i.Size
		mark := ""
		switch {
		case i.Active:
			mark = "*"
		case i.Held:
			mark = "!"
		}
		from := i.From
		if from == "" {
			from = "MAILER-DAEMON"
		}
		fmt.Fprintf(w, "%-*s %8d %-20s  %s\n", idw, i.ID+mark, i.Size, i.Arrived.Local().Format("Mon Jan _2 15:04:05"), from)
		last := "\x00"
		for _, r := range i.Recipients {
			if r.State != queue.Queued {
				continue
			}
			if reason := recipientReason(r); reason != last {
				if reason != "" {
					fmt.Fprintf(w, "(%s)\n", reason)
				}
				last = reason
			}
			fmt.Fprintf(w, "%s%s\n", indent, r.Address)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "-- %d Kbytes in %d Request%s.\n", (total+1023)/1024, len(infos), map[bool]string{true: "s"}[len(infos) != 1])
}

// recipientReason is the last reply or error of r, as Postfix words it
// ("host H said: 451 4.3.0 text"), or "" when it has none.
func recipientReason(r queue.RecipientInfo) string {
	if r.Err == nil {
		return ""
	}
	reason := fmt.Sprintf("%d ", r.Err.Code)
	if e := r.Err.EnhancedCode; e[0] != 0 {
		reason += fmt.Sprintf("%d.%d.%d ", e[0], e[1], e[2])
	}
	reason += oneLine(r.Err.Message)
	if r.Remote != "" {
		reason = "host " + r.Remote + " said: " + reason
	}
	return reason
}

// writeAttempt writes one attempt of "queue show": when, the server that
// replied (or "local" when none was reached), TLS, and the reply.
func writeAttempt(w io.Writer, a queue.Attempt) {
	remote := a.Remote
	if remote == "" {
		remote = "local"
	}
	if a.TLS != "" {
		remote += " " + a.TLS
	}
	reply := fmt.Sprintf("%d ", a.Reply.Code)
	if e := a.Reply.EnhancedCode; e[0] != 0 {
		reply += fmt.Sprintf("%d.%d.%d ", e[0], e[1], e[2])
	}
	fmt.Fprintf(w, "  attempt %s %s: %s\n", a.Time.Format(time.RFC3339), remote, reply+oneLine(a.Reply.Message))
}

// remoteError is a command's failure as the running server reported it.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return e.msg }

// controlRequest runs a queue command in the server listening on sock.
// A server that is not running is an error that is not a *remoteError.
func controlRequest(ctx context.Context, sock string, args []string) (string, error) {
	return controlPost(ctx, sock, "/queue", args)
}

// controlClient is an HTTP client whose every connection goes to the
// Unix socket sock.
func controlClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// startControl serves queue commands on the control socket (mode 0600: the
// socket's permissions are the access control).
func (s *server) startControl() error {
	sock := controlSocket(s.cfg.DataDir)
	if _, err := controlRequest(context.Background(), sock, []string{"list"}); err == nil {
		return fmt.Errorf("another server is running on %s", s.cfg.DataDir)
	}
	os.Remove(sock)
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /queue", func(w http.ResponseWriter, r *http.Request) {
		var args []string
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&args); err != nil || len(args) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if s.queue == nil {
			http.Error(w, "a proxy node has no queue", http.StatusConflict)
			return
		}
		var out bytes.Buffer
		if err := queueCommand(r.Context(), s.queue, args, &out); err != nil {
			http.Error(w, strings.TrimSuffix(err.Error(), ": usage"), http.StatusConflict)
			return
		}
		w.Write(out.Bytes())
	})
	mux.HandleFunc("POST /changed", s.handleChanged)
	mux.HandleFunc("POST /kick", s.handleKick)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.serve("control", func() error { return hs.Serve(ln) }, func(ctx context.Context) error {
		defer os.Remove(sock)
		return hs.Shutdown(ctx)
	}, http.ErrServerClosed)
	return nil
}
