package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"partyline/bench/internal/stats"
)

// spawnRun runs --procs K child processes of this binary, each with its
// share of the connections (--proc-index i) and a common --start-at so
// that the measurement windows line up, then merges their records.
func spawnRun(ctx context.Context, o *options, args []string) (*stats.Report, error) {
	c := &o.cfg
	if c.FindMax {
		return nil, errors.New("--find-max needs a single generator process")
	}
	start := c.StartAt
	if start.IsZero() {
		// Room for the ramp (and joins), plus a margin.
		ramp := time.Duration(float64(c.Conns) / c.RampRate * 1.3 * float64(time.Second))
		start = time.Now().Add(ramp + 10*time.Second)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-procs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmds := make([]*exec.Cmd, c.Procs)
	outs := make([]string, c.Procs)
	for i := range cmds {
		outs[i] = filepath.Join(dir, fmt.Sprintf("proc%d.json", i))
		// Later flags win: override what the parent handles itself.
		cargs := append([]string{c.Scenario}, args...)
		cargs = append(cargs, "--proc-index", strconv.Itoa(i), "--out", outs[i],
			"--start-at", strconv.FormatFloat(float64(start.UnixNano())/1e9, 'f', 3, 64),
			"--server-cmd=", "--server-pid", strconv.Itoa(c.ServerPID), "--run-id", c.RunID,
			"--quiet="+strconv.FormatBool(i > 0 || o.quiet))
		cmd := exec.CommandContext(ctx, exe, cargs...)
		cmd.Stderr = os.Stderr
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		cmds[i] = cmd
	}
	var errs []error
	var reps []*stats.Report
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("proc %d: %w", i, err))
		}
		if r, err := readReport(outs[i]); err == nil {
			reps = append(reps, r)
		}
	}
	if len(reps) == 0 {
		return nil, errors.Join(append(errs, errors.New("no process wrote a record"))...)
	}
	return mergeReports(reps), errors.Join(errs...)
}
