package main

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// layers ranks the packages: a package may import only packages of a lower
// rank, so the imports point one way, main -> assemble -> server ->
// dialect -> backplane -> routing/auth/store -> codec; cluster implements
// backplane over NATS and only assemble (and tests) import it. The longest
// matching prefix wins; "/" ends a prefix that covers the packages below it
// only.
var layers = []struct {
	prefix string
	rank   int
}{
	{"partyline/codec", 0},
	{"partyline/internal/security", 0},
	{"partyline/sdk/js", 0}, // the embedded SDK files
	{"partyline/routing", 1},
	{"partyline/auth", 1},
	{"partyline/store", 1},
	{"partyline/web", 1},       // the pages and the SDK: they know dialects by name only
	{"partyline/backplane", 2}, // what the dialects share with other nodes
	{"partyline/dialect", 3},   // the seam: Dialect, Session, Conn
	{"partyline/dialect/internal/", 4},
	{"partyline/webhook", 4},          // delivers dialect.Events; the server owns it
	{"partyline/dialect/presence", 5}, // chat counts its users online
	{"partyline/dialect/", 6},
	{"partyline/httpapi", 7},
	{"partyline/cluster", 7}, // the backplane over NATS: above the dialects, which see only package backplane
	{"partyline/server", 8},
	{"partyline/assemble", 9}, // the wiring: which dialects, which backplane
	{"partyline", 10},
	// Helpers of tests and programs of their own: above everything, so
	// that no package of the server imports them.
	{"partyline/internal/testutil", 11},
	{"partyline/auth/authtest", 11},
	{"partyline/dialect/dialecttest", 11},
	{"partyline/dialect/chat/chattest", 12},
	{"partyline/cluster/cmd/", 11},
	{"partyline/bench", 11},
	{"partyline/examples/", 11}, // example programs: standard library in their code, anything in tests
}

func rankOf(path string) (int, bool) {
	best, rank := -1, 0
	for _, l := range layers {
		match := path == l.prefix
		if strings.HasSuffix(l.prefix, "/") {
			match = strings.HasPrefix(path, l.prefix)
		} else if strings.HasPrefix(path, l.prefix+"/") && l.prefix != "partyline" {
			match = true
		}
		if match && len(l.prefix) > best {
			best, rank = len(l.prefix), l.rank
		}
	}
	return rank, best >= 0
}

// TestImportLayers reads every package's imports (tests excluded) and
// fails on one that points up or sideways.
func TestImportLayers(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(dir string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return err
		}
		if name := e.Name(); dir != "." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			return nil // no Go files here
		}
		path := filepath.ToSlash(filepath.Join("partyline", dir))
		if dir == "." {
			path = "partyline"
		}
		if strings.HasPrefix(path, "partyline/bench") {
			return nil // the load generator and its peers: a program of its own
		}
		r, ok := rankOf(path)
		if !ok {
			t.Errorf("package %s has no layer: add it to layers", path)
			return nil
		}
		n++
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, "github.com/nats-io/") && strings.HasPrefix(path, "partyline/dialect") {
				t.Errorf("%s imports %s: dialects reach other nodes through package backplane only", path, imp)
			}
			if imp != "partyline" && !strings.HasPrefix(imp, "partyline/") {
				continue
			}
			ir, ok := rankOf(imp)
			if !ok || ir >= r {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", path, r, imp, ir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("checked %d packages: the walk missed the tree", n)
	}
}
