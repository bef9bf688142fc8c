// Command fullserver assembles every mailagent component into one mail
// server, and administers its directory.
//
//	fullserver [-data DIR] [-config FILE] COMMAND [ARGS]
//
// Commands are listed in usage; each lives in the file named for it
// (admin.go holds the directory commands).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: fullserver [-data DIR] [-config FILE] COMMAND [ARGS]

Without a command (or with "serve"), runs the mail server: the MX,
submission, LMTP, IMAP, POP3 and metrics listeners of the configuration
(by default on 127.0.0.1 ports 2525, 2587, 2465, 2424, 2143, 2993, 2110,
2995 and 9425), until SIGTERM or Ctrl-C. The commands administer the same
data directory, also while the server runs: a command that changes what
the server uses (users, passwords, domains, aliases, transports, quotas,
DKIM keys) tells the running server over its control socket, which
applies it before the command returns.

options:
  -data DIR          data directory (default ./data; SQLite directory DIR/mailagent.db)
  -config FILE       configuration file (default $MAILAGENT_CONFIG, else
                     DIR/fullserver.toml, else /etc/mailagent/fullserver.toml,
                     the first that is set or present)
  -log-format F      server logs as "text" or "json" (default: the configuration's)

commands:
  serve
  domain add|del DOMAIN
  domain list
  domain host DOMAIN HOST                (the backend of its users without one)
  user add|passwd [-force] ADDRESS        (-force: accept a weak password)
  user del|disable|enable ADDRESS
  user list [DOMAIN]
  user quota ADDRESS [BYTES MESSAGES]    (show, or set; 0 = no limit)
  user move ADDRESS HOST                 (its backend; a running proxy ends
                                          its sessions; "" clears)
  alias add SOURCE DEST[,DEST...]        (SOURCE "@domain" is a catch-all)
  alias del SOURCE
  alias list
  transport set DOMAIN SPEC              (lmtp:HOST:PORT, lmtp:unix:PATH,
  transport del DOMAIN                    smtp:[HOST]:PORT, error:TEXT)
  transport list
  queue list
  queue show|hold|release|delete ID
  queue flush [ID...]                    (retry now)
  dkim keygen DOMAIN [-selector S] [-algo rsa|ed25519] [-force]
                                         (DOMAIN must be local unless -force)
  dns records DOMAIN [-host HOST] [-ip IP,...]   (zone-file lines to publish)
  dns check DOMAIN [-host HOST] [-ip IP,...]     (compare with DNS; exit 1 if wrong)
  migrate [-dsn DSN] [-convert-myisam] [-n]
                                         (bring a MySQL or PostgreSQL schema up to
                                          date: prints the steps, then runs them
                                          with DSN, a user that may CREATE and
                                          ALTER; -n prints only)
  backup DIR                             (consistent copy while the server runs:
                                          directory, Maildirs, queue, DKIM keys,
                                          certificates, configuration, manifest)
  restore DIR                            (check DIR's manifest and put it into
                                          the data directory, which must be new)

Passwords are read from standard input, one line, or prompted for
without echo on a terminal; never from the command line.
`

// errUsage makes run print the usage after the error.
var errUsage = errors.New("usage")

// command runs one subcommand with the arguments after its name.
type command func(ctx context.Context, e *env, args []string) error

// commands maps each subcommand to its function.
func commands() map[string]command {
	return map[string]command{
		"serve":     cmdServe,
		"domain":    cmdDomain,
		"user":      cmdUser,
		"alias":     cmdAlias,
		"transport": cmdTransport,
		"queue":     cmdQueue,
		"dkim":      cmdDKIM,
		"dns":       cmdDNS,
		"migrate":   cmdMigrate,
		"backup":    cmdBackup,
		"restore":   cmdRestore,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, runs the command and
// returns the exit status (0 ok, 1 failure, 2 usage).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fullserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data", "./data", "data directory")
	configFile := fs.String("config", "", "configuration file")
	logFormat := fs.String("log-format", "", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "fullserver: %s (see 'fullserver help')\n", oneLine(err.Error()))
		return 2
	}
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	name, cmdArgs := "serve", []string(nil)
	if fs.NArg() > 0 {
		name, cmdArgs = fs.Arg(0), fs.Args()[1:]
	}
	if name == "help" {
		// "help" alone, or "help COMMAND [VERB]".
		name = ""
		if len(cmdArgs) > 0 {
			name = cmdArgs[0]
		}
		if name != "" {
			if _, ok := commands()[name]; !ok {
				fmt.Fprintf(stderr, "fullserver: unknown command %q (see 'fullserver help')\n", name)
				return 2
			}
		}
		fmt.Fprint(stdout, commandUsage(name))
		return 0
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "fullserver: unknown command %q (see 'fullserver help')\n", fs.Arg(0))
		return 2
	}
	if wantsHelp(cmdArgs) {
		fmt.Fprint(stdout, commandUsage(name))
		return 0
	}
	e := &env{
		dataDir:    *dataDir,
		dataSet:    dataSet,
		configFile: *configFile,
		logFormat:  *logFormat,
		stdin:      stdin,
		stdout:     stdout,
		stderr:     stderr,
	}
	defer e.close()
	if err := cmd(ctx, e, cmdArgs); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "fullserver: %s (see 'fullserver help')\n", strings.TrimSuffix(err.Error(), ": usage"))
			return 2
		}
		fmt.Fprintf(stderr, "fullserver: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine keeps an error message on one line, as scripts reading the
// output expect.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// wantsHelp reports whether a command's arguments ask for its usage
// ("user --help", "queue show -h", "dns help") rather than name an
// operand; "help" counts only in the verb's place.
func wantsHelp(args []string) bool {
	for i, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || (i == 0 && a == "help") {
			return true
		}
	}
	return false
}

// commandUsage is the usage of one command: its lines of the usage text
// (with their continuation lines) and the options; all of it for "".
func commandUsage(name string) string {
	if name == "" {
		return usage
	}
	var b strings.Builder
	b.WriteString("usage: fullserver [-data DIR] [-config FILE] " + name + " ...\n\n")
	in := false
	for _, line := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  "+name+" ") || line == "  "+name:
			in = true
		case in && strings.HasPrefix(line, "   "):
			// A continuation of the command's line.
		default:
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	if name == "serve" {
		b.WriteString("\nRuns the mail server until SIGTERM or Ctrl-C (also with no command).\n")
	}
	if name == "user" {
		b.WriteString("\nPasswords are read from standard input, one line, or prompted for\nwithout echo on a terminal; never from the command line.\n")
	}
	return b.String()
}
