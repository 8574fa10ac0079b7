package server

import (
	"runtime"
	"testing"
)

// spareProc keeps one P more than the event loops, never lowers
// GOMAXPROCS and leaves an explicit GOMAXPROCS environment alone.
func TestSpareProc(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, tc := range []struct {
		name       string
		env        string
		procs, lps int
		want       int
	}{
		{"equal to loops", "", 2, 2, 3},
		{"fewer than loops", "", 1, 4, 5},
		{"already one more", "", 3, 2, 3},
		{"more", "", 8, 2, 8},
		{"fixed by the environment", "2", 2, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			runtime.GOMAXPROCS(tc.procs)
			spareProc(tc.lps)
			if got := runtime.GOMAXPROCS(0); got != tc.want {
				t.Fatalf("GOMAXPROCS %d with %d loops -> %d, want %d", tc.procs, tc.lps, got, tc.want)
			}
		})
	}
}
