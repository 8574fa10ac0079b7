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

func TestParseMemLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"max\n", 0},
		{"2147483648\n", 2 << 30},
		{"9223372036854771712\n", 9223372036854771712}, // cgroup v1 "unlimited": larger than the machine, so ignored
		{"", 0},
		{"-1", 0},
		{"lots", 0},
	} {
		if got := parseMemLimit(c.in); got != c.want {
			t.Errorf("parseMemLimit(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	if d := defaultOutboundTotal(); d <= 0 {
		t.Fatalf("defaultOutboundTotal() = %d", d)
	}
}
