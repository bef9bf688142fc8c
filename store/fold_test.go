package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestUnicodeCase checks that local parts with non-ASCII letters match
// in any case on both dialects (SQLite's NOCASE folds ASCII only), and
// that nothing but case is folded.
func TestUnicodeCase(t *testing.T) {
	forms := []string{"José", "JOSÉ", "josé"}
	for _, stored := range forms {
		t.Run(stored, func(t *testing.T) {
			forEachDialect(t, nil, func(t *testing.T, s *SQL) {
				ctx := context.Background()
				must(t, s.AddDomain(ctx, "example.org"))
				addr := stored + "@example.org"
				must(t, s.AddUser(ctx, &User{Address: addr, PasswordHash: "h"}))
				for _, form := range forms {
					a := form + "@example.org"
					u, err := s.LookupUser(ctx, a)
					if err != nil || u.Address != addr {
						t.Errorf("LookupUser(%s) = %+v, %v; want %s", a, u, err, addr)
					}
					r, err := s.Resolve(ctx, a)
					if err != nil || len(r.Local) != 1 || r.Local[0].Address != addr || r.Local[0].Maildir != "example.org/josé/Maildir" {
						t.Errorf("Resolve(%s) = %+v, %v; want %s", a, r, err, addr)
					}
					if r, err := s.Resolve(ctx, form+"+tag@example.org"); err != nil || len(r.Local) != 1 || r.Local[0].Address != addr {
						t.Errorf("Resolve(%s+tag) = %+v, %v", form, r, err)
					}
					if err := s.AddUser(ctx, &User{Address: a, PasswordHash: "h"}); !errors.Is(err, ErrExists) {
						t.Errorf("AddUser(%s) with %s stored = %v, want ErrExists", a, addr, err)
					}
				}
				for _, a := range []string{"jose@example.org", "JOSE@example.org", "josè@example.org"} {
					if _, err := s.LookupUser(ctx, a); !errors.Is(err, ErrNotFound) {
						t.Errorf("LookupUser(%s) = %v, want ErrNotFound", a, err)
					}
					if _, err := s.Resolve(ctx, a); !errors.Is(err, ErrNotFound) {
						t.Errorf("Resolve(%s) = %v, want ErrNotFound", a, err)
					}
				}
				// Writes find the user under any case too.
				must(t, s.SetPassword(ctx, "JoSÉ@example.org", "h2"))
				if u, err := s.LookupUser(ctx, "josé@example.org"); err != nil || u.PasswordHash != "h2" {
					t.Fatalf("after SetPassword: %+v, %v", u, err)
				}
				if us, err := s.ListUsers(ctx, "example.org"); err != nil || len(us) != 1 || us[0].Address != addr {
					t.Fatalf("ListUsers = %v, %v", us, err)
				}
				must(t, s.RemoveUser(ctx, "JOSÉ@example.org"))
				if _, err := s.LookupUser(ctx, addr); !errors.Is(err, ErrNotFound) {
					t.Fatalf("removed user found: %v", err)
				}
			})
		})
	}
}

// TestUnicodeCaseForwardings checks forwarding sources and domains with
// non-ASCII letters, and the edge cases of simple case folding: the
// capital sharp s folds to ß but ß is not "ss"; Turkish dotted capital
// İ and dotless ı are not i (their mappings depend on the language);
// final sigma is sigma.
func TestUnicodeCaseForwardings(t *testing.T) {
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		must(t, s.AddDomain(ctx, "BÜCHER.example"))
		must(t, s.AddUser(ctx, &User{Address: "Ärger@bücher.example", PasswordHash: "h"}))
		must(t, s.AddForwarding(ctx, "ÉQUIPE@Bücher.example", []string{"ärger@bücher.example"}))
		must(t, s.AddUser(ctx, &User{Address: "straße@bücher.example", PasswordHash: "h"}))
		must(t, s.AddUser(ctx, &User{Address: "İpek@bücher.example", PasswordHash: "h"}))
		must(t, s.AddUser(ctx, &User{Address: "ılgaz@bücher.example", PasswordHash: "h"}))
		must(t, s.AddUser(ctx, &User{Address: "ΟΔΥΣΣΕΥΣ@bücher.example", PasswordHash: "h"}))
		for in, want := range map[string]string{
			"équipe@BÜCHER.example":          "Ärger@bücher.example",
			"Équipe+x@xn--bcher-kva.example": "Ärger@bücher.example",
			"ÄRGER@bücher.example":           "Ärger@bücher.example",
			"STRAẞE@bücher.example":          "straße@bücher.example",
			"İPEK@bücher.example":            "İpek@bücher.example",
			"ıLGAZ@bücher.example":           "ılgaz@bücher.example",
			"οδυσσευς@bücher.example":        "ΟΔΥΣΣΕΥΣ@bücher.example",
		} {
			r, err := s.Resolve(ctx, in)
			if err != nil || len(r.Local) != 1 || r.Local[0].Address != want {
				t.Errorf("Resolve(%s) = %+v, %v; want %s", in, r, err, want)
			}
		}
		for _, in := range []string{
			"STRASSE@bücher.example", "strasse@bücher.example", "ipek@bücher.example",
			"IPEK@bücher.example", "ilgaz@bücher.example", "ILGAZ@bücher.example", "equipe@bücher.example",
		} {
			if _, err := s.Resolve(ctx, in); !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve(%s) = %v, want ErrNotFound", in, err)
			}
		}
		if d, err := s.Forwardings(ctx, "ÉQUIPE@bücher.example"); err != nil || len(d) != 1 || d[0] != "ärger@bücher.example" {
			t.Errorf("Forwardings = %v, %v", d, err)
		}
		must(t, s.RemoveForwarding(ctx, "Équipe@bücher.example"))
		if ok, err := s.IsLocalDomain(ctx, "BÜCHER.EXAMPLE"); !ok || err != nil {
			t.Errorf("IsLocalDomain = %v, %v", ok, err)
		}
	})
}

// TestSeedUnicodeCase writes rows by hand, as an administrator of the
// seed installation would, with non-ASCII letters in upper case, and
// checks that after Open they are found in any case. On SQLite and
// PostgreSQL the migration stores such keys case-folded (the typed
// address moves to display_email); ASCII keys and MySQL rows stay as
// written.
func TestSeedUnicodeCase(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, raw := d.open(t)
			schema := seedSchema(driver)
			rows := []string{
				"INSERT INTO domains (domain) VALUES ('example.org')",
				"INSERT INTO domains (domain) VALUES ('BÜCHER.example')",
				"INSERT INTO users (email, password) VALUES ('JOSÉ@example.org', 'x')",
				"INSERT INTO users (email, password) VALUES ('Alice@example.org', 'x')",
				"INSERT INTO users (email, password) VALUES ('Ärger@BÜCHER.example', 'x')",
				"INSERT INTO forwardings (source, destination) VALUES ('ÉQUIPE@example.org', 'josé@example.org')",
				"INSERT INTO transport (domain, transport) VALUES ('ÜBER.example', 'lmtp:127.0.0.1:24')",
			}
			folded := driver != DriverMySQL
			if folded {
				// Two spellings that fold alike: the folded one stays
				// the one lookups find, the other is left alone.
				rows = append(rows,
					"INSERT INTO users (email, password) VALUES ('MÜLLER@example.org', 'upper')",
					"INSERT INTO users (email, password) VALUES ('müller@example.org', 'lower')")
			}
			for _, q := range append(schema, rows...) {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			var log bytes.Buffer
			s, err := Open(ctx, driver, dsn, migrating(&Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if conflict := "key=MÜLLER@example.org folded=müller@example.org"; folded != strings.Contains(log.String(), conflict) {
				t.Errorf("migration log %q; want %q on SQLite and PostgreSQL only", log.String(), conflict)
			}
			for in, want := range map[string]string{
				"josé@example.org":            "JOSÉ@example.org",
				"José@example.org":            "JOSÉ@example.org",
				"alice@example.org":           "Alice@example.org",
				"ärger@bücher.example":        "Ärger@bücher.example",
				"équipe@example.org":          "JOSÉ@example.org",
				"Équipe+x@example.org":        "JOSÉ@example.org",
				"ÄRGER@xn--bcher-kva.example": "Ärger@bücher.example",
			} {
				r, err := s.Resolve(ctx, in)
				if err != nil || len(r.Local) != 1 || r.Local[0].Address != want {
					t.Errorf("Resolve(%s) = %+v, %v; want %s", in, r, err, want)
				}
			}
			if tr, err := s.Transport(ctx, "über.example"); err != nil || tr != "lmtp:127.0.0.1:24" {
				t.Errorf("Transport(über.example) = %q, %v", tr, err)
			}
			if folded {
				if u, err := s.LookupUser(ctx, "MÜLLER@example.org"); err != nil || u.PasswordHash != "lower" {
					t.Errorf("LookupUser(MÜLLER) = %+v, %v; want the folded row", u, err)
				}
				if r, err := s.Resolve(ctx, "MÜLLER@example.org"); err != nil || r.Local[0].Address != "müller@example.org" {
					t.Errorf("Resolve(MÜLLER) = %+v, %v; want the folded row", r, err)
				}
			}
			// What is on disk.
			want := map[string][2]string{
				"Alice@example.org": {"Alice@example.org", ""},
			}
			if folded {
				want["JOSÉ@example.org"] = [2]string{"josé@example.org", "JOSÉ@example.org"}
				want["Ärger@BÜCHER.example"] = [2]string{"ärger@bücher.example", "Ärger@bücher.example"}
				want["MÜLLER@example.org"] = [2]string{"MÜLLER@example.org", ""}
			} else {
				want["JOSÉ@example.org"] = [2]string{"JOSÉ@example.org", ""}
			}
			for typed, w := range want {
				var email, display string
				err := raw.QueryRow("SELECT email, display_email FROM users WHERE email = ?", w[0]).Scan(&email, &display)
				if err != nil || email != w[0] || display != w[1] {
					t.Errorf("row of %s = %q, %q, %v; want %q, %q", typed, email, display, err, w[0], w[1])
				}
			}
			if folded {
				for q, w := range map[string]string{
					"SELECT source FROM forwardings":                           "équipe@example.org",
					"SELECT domain FROM domains WHERE domain <> 'example.org'": "bücher.example",
					"SELECT domain FROM transport":                             "über.example",
				} {
					var got string
					if err := raw.QueryRow(q).Scan(&got); err != nil || got != w {
						t.Errorf("%s = %q, %v; want %q", q, got, err, w)
					}
				}
			}
		})
	}
}

// TestSQLiteShell checks what storing folded keys (rather than a
// collation defined in Go) is for: the sqlite3 shell reads and writes
// the directory, and finds a user by the folded address.
func TestSQLiteShell(t *testing.T) {
	shell := interop.Program(t, "sqlite3")
	ctx := context.Background()
	path := t.TempDir() + "/mailagent.db"
	s, err := Open(ctx, DriverSQLite, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, s.AddDomain(ctx, "example.org"))
	must(t, s.AddUser(ctx, &User{Address: "JOSÉ@example.org", PasswordHash: "h"}))
	out, err := exec.Command(shell, path,
		"INSERT INTO users (email, password) VALUES ('bob@example.org', 'x');",
		"SELECT email || ' ' || display_email FROM users WHERE email = 'josé@example.org';",
		"PRAGMA integrity_check;").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "josé@example.org JOSÉ@example.org\nok" {
		t.Fatalf("sqlite3 printed %q", got)
	}
	if u, err := s.LookupUser(ctx, "BOB@example.org"); err != nil || u.PasswordHash != "x" {
		t.Fatalf("row written by the shell: %+v, %v", u, err)
	}
}
