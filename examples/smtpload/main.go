// Command smtpload drives an SMTP or LMTP server with concurrent
// connections and reports its throughput and transaction latency.
//
//	smtpload -addr HOST:PORT [-lmtp] [-c N] [-n N] [-size BYTES] [flags]
//
// It opens -c connections (ESMTP, RFC 5321; or LMTP, RFC 2033, with
// -lmtp; optionally STARTTLS, RFC 3207, or implicit TLS, RFC 8314, and
// AUTH PLAIN, RFC 4954/4616, which it refuses to send without TLS) and
// sends -n messages in total between them, one transaction after another
// on each connection, one recipient per message taken in turn from the
// -to list. With -msgs-per-conn a connection says QUIT and a new one is
// opened after that many messages, to include connection set-up in the
// figures.
//
// Every message is valid RFC 5322 text: CRLF line endings, no bare CR or
// LF, lines of at most 78 characters, a unique Message-ID, and a header
// field X-Smtpload-Body-SHA256 with the SHA-256 of its body. -size is the
// size of the whole message — header, blank line and body, as handed to
// DATA before dot-stuffing — and is met exactly whenever it leaves room
// for the header and the body's first line (about 380 bytes with the
// default addresses), except that a single byte left over becomes an
// empty line of two; smaller sizes give the smallest message the
// generator can make. No body line starts with a dot, so the bytes on the
// wire are the message and the final ".\r\n".
//
// The report gives the messages acknowledged (sent) and refused or lost
// (failed, with the first few errors), the elapsed time, msgs/s, MB/s
// (10^6 bytes of message per second), and the nearest-rank p50, p90, p99
// and maximum latency of a transaction, from MAIL to the reply to the end
// of DATA, over the acknowledged messages. -json prints it as one JSON
// object instead. The exit status is 1 when any message failed or the run
// was interrupted, 2 for a usage error.
//
// -record FILE appends, for every message the server acknowledged and as
// soon as it did, a line "<MESSAGE-ID> SHA256" with the hex SHA-256 of
// the body bytes sent (everything after the blank line that ends the
// header). A crash test can then check that every acknowledged message is
// stored complete: find the stored copy by its Message-ID and hash what
// follows its header. Any stored copy, acknowledged or not, can also be
// checked against its own X-Smtpload-Body-SHA256 field.
//
// Every read and write has the -timeout deadline. Ctrl-C (SIGINT) or
// SIGTERM stops starting transactions, lets those in flight finish, and
// reports what was done; a second Ctrl-C ends the program at once.
//
// Against the example server (go run ./examples/fullserver, which creates
// postmaster@localhost on its first run and listens as MX on
// 127.0.0.1:2525):
//
//	go run ./examples/smtpload -addr 127.0.0.1:2525 -to postmaster@localhost \
//	    -c 8 -n 2000 -size 10240
//
// (the MX checks each sender's SPF and DMARC records through the system's
// DNS resolver, and that time is part of its latency), and through its
// LMTP listener, which does no such checks, with a record of what was
// acknowledged:
//
//	go run ./examples/smtpload -addr 127.0.0.1:2424 -lmtp -to postmaster@localhost \
//	    -c 8 -n 2000 -size 10240 -record acked.txt
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, the default handling comes back: a second
	// one ends the program without waiting for transactions in flight.
	context.AfterFunc(ctx, stop)
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the command line args and returns the exit status.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, jsonOut, recordPath, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "smtpload:", err)
		}
		return 2
	}
	if recordPath != "" {
		f, err := os.OpenFile(recordPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "smtpload:", err)
			return 2
		}
		defer f.Close()
		cfg.record = f
	}
	res, err := run(ctx, cfg)
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.Encode(res)
	} else {
		printResult(stdout, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "smtpload:", err)
		return 1
	}
	if res.Failed > 0 || res.Interrupted {
		return 1
	}
	return 0
}

// parseFlags turns the command line into a config.
func parseFlags(args []string, stderr io.Writer) (cfg *config, jsonOut bool, record string, err error) {
	fs := flag.NewFlagSet("smtpload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg = &config{}
	var to, auth string
	var insecure bool
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:2525", "server `HOST:PORT` (unix:PATH for a unix socket)")
	fs.BoolVar(&cfg.lmtp, "lmtp", false, "speak LMTP (LHLO) instead of SMTP (EHLO)")
	fs.IntVar(&cfg.conns, "c", 1, "concurrent connections")
	fs.IntVar(&cfg.total, "n", 100, "messages to send in total")
	fs.IntVar(&cfg.size, "size", 10240, "message size in `bytes`, header included")
	fs.StringVar(&cfg.from, "from", "smtpload@localhost", "envelope and header sender")
	fs.StringVar(&to, "to", "postmaster@localhost", "recipients, comma-separated, one per message in turn")
	fs.IntVar(&cfg.perConn, "msgs-per-conn", 0, "messages per connection before reconnecting (0: all in one session)")
	fs.BoolVar(&cfg.startTLS, "starttls", false, "STARTTLS before sending")
	fs.BoolVar(&cfg.implicitTLS, "tls", false, "TLS from the first byte (port 465 style)")
	fs.BoolVar(&insecure, "insecure", false, "accept any server certificate")
	fs.StringVar(&auth, "auth", "", "AUTH PLAIN as `user:pass` (only with -tls or -starttls)")
	fs.StringVar(&cfg.ehlo, "ehlo", "localhost", "EHLO/LHLO name, also the Message-ID domain")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "deadline of every read and write, and of connecting")
	fs.BoolVar(&jsonOut, "json", false, "print the result as one JSON object")
	fs.StringVar(&record, "record", "", "append \"<Message-ID> body-SHA256\" to `FILE` for each acknowledged message")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: smtpload -addr HOST:PORT [-lmtp] [-c N] [-n N] [-size BYTES] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, false, "", err
	}
	if fs.NArg() > 0 {
		return nil, false, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.conns < 1:
		return nil, false, "", errors.New("-c must be at least 1")
	case cfg.total < 0:
		return nil, false, "", errors.New("-n must not be negative")
	case cfg.perConn < 0:
		return nil, false, "", errors.New("-msgs-per-conn must not be negative")
	case cfg.timeout <= 0:
		return nil, false, "", errors.New("-timeout must be positive")
	case cfg.startTLS && cfg.implicitTLS:
		return nil, false, "", errors.New("-starttls and -tls exclude each other")
	case auth != "" && !cfg.startTLS && !cfg.implicitTLS:
		return nil, false, "", errors.New("-auth sends the password: use it with -tls or -starttls")
	}
	for _, a := range strings.Split(to, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.to = append(cfg.to, a)
		}
	}
	if len(cfg.to) == 0 {
		return nil, false, "", errors.New("-to names no recipient")
	}
	if auth != "" {
		var ok bool
		if cfg.user, cfg.pass, ok = strings.Cut(auth, ":"); !ok || cfg.user == "" {
			return nil, false, "", errors.New("-auth wants user:pass")
		}
	}
	if cfg.startTLS || cfg.implicitTLS {
		host, _, err := net.SplitHostPort(cfg.addr)
		if err != nil {
			host = ""
		}
		cfg.tlsConfig = &tls.Config{ServerName: host, InsecureSkipVerify: insecure}
	}
	return cfg, jsonOut, record, nil
}

// printResult writes the result for a reader.
func printResult(w io.Writer, r *result) {
	fmt.Fprintf(w, "%s %s, %d connections (%d sessions), %d messages of %d bytes\n",
		r.Protocol, r.Addr, r.Connections, r.Sessions, r.Messages, r.Size)
	fmt.Fprintf(w, "sent      %d\n", r.Sent)
	fmt.Fprintf(w, "failed    %d\n", r.Failed)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "          %s\n", e)
	}
	if r.Interrupted {
		fmt.Fprintf(w, "interrupted: %d messages not attempted\n", r.Messages-r.Sent-r.Failed)
	}
	fmt.Fprintf(w, "elapsed   %.3f s\n", r.Elapsed)
	fmt.Fprintf(w, "rate      %.1f msgs/s, %.2f MB/s\n", r.MsgsPerSec, r.MBPerSec)
	fmt.Fprintf(w, "latency   p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
}
