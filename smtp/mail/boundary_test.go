package mail_test

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mailagent/mailagent"

// deps returns the packages of this module that pkg imports, directly
// or not, read from the source (tests left out).
func deps(t *testing.T, root, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(p string)
	walk = func(p string) {
		dir := filepath.Join(root, strings.TrimPrefix(strings.TrimPrefix(p, module), "/"))
		bp, err := build.Default.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if (imp == module || strings.HasPrefix(imp, module+"/")) && !seen[imp] {
				seen[imp] = true
				walk(imp)
			}
		}
	}
	walk(pkg)
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestBoundaries keeps the layers apart: this package imports nothing of
// mailagent, and nothing below the servers (the router, local delivery,
// the queue, the outbound client) imports a server package.
func TestBoundaries(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if got := deps(t, root, module+"/smtp/mail"); len(got) != 0 {
		t.Errorf("smtp/mail imports %v", got)
	}
	servers := []string{module + "/smtp", module + "/imap", module + "/pop3", module + "/maildir/sieve/managesieve"}
	for _, pkg := range []string{"smtp/router", "smtp/local", "smtp/queue", "smtp/outbound"} {
		for _, d := range deps(t, root, module+"/"+pkg) {
			if slices.Contains(servers, d) {
				t.Errorf("%s imports the server package %s", pkg, d)
			}
		}
	}
}
