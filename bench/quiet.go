package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"partyline/bench/internal/procstat"
)

// waitQuietCmd waits (bounded) until the machine's CPUs are nearly idle,
// so that a run does not measure somebody else's build.
func waitQuietCmd(args []string) error {
	fs := flag.NewFlagSet("wait-quiet", flag.ContinueOnError)
	limit := fs.Float64("below", 0.15, "busy `cores` to count as quiet")
	hold := fs.Duration("for", 3*time.Second, "stay quiet this long")
	maxWait := fs.Duration("max", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	quietSince := time.Time{}
	prev, _ := procstat.MachineBusy()
	for {
		time.Sleep(500 * time.Millisecond)
		cur, err := procstat.MachineBusy()
		if err != nil {
			return err
		}
		busy := (cur - prev).Seconds() / 0.5
		prev = cur
		if busy < *limit {
			if quietSince.IsZero() {
				quietSince = time.Now()
			}
			if time.Since(quietSince) >= *hold {
				fmt.Fprintf(os.Stderr, "wait-quiet: quiet after %v\n", time.Since(start).Round(time.Second))
				return nil
			}
		} else {
			quietSince = time.Time{}
		}
		if time.Since(start) > *maxWait {
			fmt.Fprintf(os.Stderr, "wait-quiet: still %.2f cores busy after %v; going on\n", busy, *maxWait)
			return nil
		}
	}
}
