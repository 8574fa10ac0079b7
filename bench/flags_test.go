package main

import (
	"strings"
	"testing"
	"time"
)

// TestHostileFlags: the hostile attacks' flags parse, keep their defaults,
// --no-attacks zeroes every hostile client, and bad values are refused.
func TestHostileFlags(t *testing.T) {
	o, err := parseFlags("hostile", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Scanners != 4 || c.ScanCodeLen != 4 || c.Silent != 100 || c.Incomplete != 50 || c.IncompleteBytes != 65000 ||
		c.IncompleteEvery != 3*time.Second || c.HTTPAddr != "" || c.HTTPIdle != 300 || c.HTTPProbeEvery != 100*time.Millisecond ||
		c.BusyReaders != 10 || c.BusyRate != 1000 || c.Dribblers != 20 || c.Flooders != 10 || c.SlowFrac != 0.01 {
		t.Fatalf("defaults: %+v", c)
	}
	o, err = parseFlags("hostile", []string{"--scanners", "2", "--scan-code-len", "5", "--silent", "7", "--incomplete", "3",
		"--incomplete-every", "1s", "--http-addr", "127.0.0.1:8081", "--http-idle", "9", "--http-probe-every", "50ms",
		"--busy-readers", "4", "--busy-rate", "250"})
	if err != nil {
		t.Fatal(err)
	}
	c = o.cfg
	if c.Scanners != 2 || c.ScanCodeLen != 5 || c.Silent != 7 || c.Incomplete != 3 || c.IncompleteEvery != time.Second ||
		c.HTTPAddr != "127.0.0.1:8081" || c.HTTPIdle != 9 || c.HTTPProbeEvery != 50*time.Millisecond ||
		c.BusyReaders != 4 || c.BusyRate != 250 {
		t.Fatalf("parsed: %+v", c)
	}
	o, err = parseFlags("hostile", []string{"--no-attacks", "--http-addr", "127.0.0.1:8081"})
	if err != nil {
		t.Fatal(err)
	}
	c = o.cfg
	if c.SlowFrac != 0 || c.Dribblers+c.Oversize+c.Flooders+c.Scanners+c.Silent+c.Incomplete+c.HTTPIdle+c.BusyReaders != 0 || c.HTTPAddr == "" {
		t.Fatalf("--no-attacks left %+v", c)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-addr", "10.0.0.1:8081"}, "loopback"},
		{[]string{"--silent", "-1"}, "0..20000"},
		{[]string{"--busy-readers", "-2"}, "0..20000"},
		{[]string{"--http-idle", "20001"}, "0..20000"},
		{[]string{"--incomplete-bytes", "70000"}, "incomplete-bytes"},
		{[]string{"--http-probe-every", "0s"}, "probe-every"},
		{[]string{"--scan-code-len", "0"}, "scan-code-len"},
	} {
		if _, err := parseFlags("hostile", tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
