package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/store"
)

// cmdMigrate brings the directory's schema up to date. The server and
// the other commands run with a database user that may only read and
// write rows (the seed's mail_admin grants) and refuse a schema that is
// behind; this command is run, with a DSN whose user may CREATE and
// ALTER tables, when the schema changes. It prints what it will do
// before doing it, and does nothing when the schema is current.
func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dsn := fs.String("dsn", "", "DSN of a database user that may CREATE and ALTER tables (default: the configuration's store.dsn)")
	convert := fs.Bool("convert-myisam", false, "convert the directory's MyISAM tables to InnoDB (MySQL)")
	dryRun := fs.Bool("n", false, "print what would be done, change nothing")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("migrate: %v: %w", err, errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate takes no arguments: %w", errUsage)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	driver, target := cfg.Store.Driver, cfg.StoreDSN()
	if *dsn != "" {
		target = *dsn
	}
	if driver == store.DriverSQLite {
		// Opening an SQLite path creates the file: a mistyped path or
		// data directory must not leave an empty directory behind.
		if _, err := os.Stat(target); err != nil {
			return fmt.Errorf("migrate: no SQLite directory at %s (the server creates and migrates it when it starts): %w", target, err)
		}
	}
	plan, err := store.PlanMigration(ctx, driver, target)
	if err != nil {
		return err
	}
	out := e.stdout
	fmt.Fprintf(out, "directory: %s, schema version %d, this program's %d\n", driver, plan.From, plan.To)
	if len(plan.MyISAM) > 0 {
		if *convert {
			fmt.Fprintf(out, "convert from MyISAM to InnoDB:\n")
			for _, t := range plan.MyISAM {
				fmt.Fprintf(out, "    ALTER TABLE %s ENGINE=InnoDB\n", t)
			}
		} else {
			fmt.Fprintf(out, "MyISAM tables: %s (-convert-myisam converts them to InnoDB)\n", strings.Join(plan.MyISAM, ", "))
		}
	}
	for _, st := range plan.Steps {
		fmt.Fprintf(out, "step %d: %s\n", st.Version, st.Summary)
		for _, q := range st.Statements {
			fmt.Fprintf(out, "    %s\n", q)
		}
	}
	if len(plan.Steps) == 0 && (len(plan.MyISAM) == 0 || !*convert) {
		fmt.Fprintf(out, "nothing to do: the schema is at version %d\n", plan.From)
		return nil
	}
	if len(plan.Steps) > 0 && len(plan.MyISAM) > 0 && !*convert {
		return fmt.Errorf("migrate: the steps fail on MyISAM tables (Specified key was too long; max key length is 1000 bytes): run again with -convert-myisam")
	}
	if *dryRun {
		return nil
	}
	st, err := store.Open(ctx, driver, target, &store.Options{Migrate: true, ConvertMyISAM: *convert})
	if errors.Is(err, store.ErrSchemaRights) {
		return fmt.Errorf("migrate: %w; give -dsn with a database user that may CREATE and ALTER tables (README, Database users)", err)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer st.Close()
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "done: the schema is at version %d\n", v)
	return nil
}

// openDirectory opens the directory of cfg as the server and the
// commands use it: without migrating a MySQL or PostgreSQL schema. A
// schema that is behind is refused in one line naming the command that
// migrates it.
func openDirectory(ctx context.Context, cfg *config.Config, opts *store.Options) (*store.SQL, error) {
	st, err := store.Open(ctx, cfg.Store.Driver, cfg.StoreDSN(), opts)
	if err != nil {
		return nil, directoryError(err)
	}
	return st, nil
}

// directoryError says how to migrate a schema that is behind; other
// errors pass unchanged.
func directoryError(err error) error {
	var se *store.SchemaError
	if errors.As(err, &se) {
		return fmt.Errorf("the directory's schema is at version %d, this program needs %d: run \"fullserver migrate -dsn DSN\""+
			" with this configuration and the DSN of a database user that may CREATE and ALTER tables", se.Have, se.Want)
	}
	return err
}
