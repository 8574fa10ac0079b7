// Command bench is partyline's load generator.
//
//	go run ./bench <scenario> [flags]     run a scenario (idle, rooms, direct, bigroom, churn, hostile)
//	go run ./bench merge a.json b.json    merge the records of several generator processes
//	go run ./bench compare a.json b.json  side-by-side table and ratios (first record is the base)
//	go run ./bench wait-quiet             wait (bounded) until the machine's CPUs are idle
//	go run ./bench persist                what rooms that survive restarts cost (RSS, store, restart time)
//	go run ./bench webhook-receiver       a signature-checking webhook receiver: delivery rate and delay
//	go run ./bench hook-receiver          a join hook (--party-auth-url) answering at once, for churn runs
//
// See bench/README.md for the scenarios and flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd := os.Args[1]; cmd {
	case "merge":
		err = mergeCmd(os.Args[2:])
	case "compare":
		err = compareCmd(os.Args[2:])
	case "wait-quiet":
		err = waitQuietCmd(os.Args[2:])
	case "persist":
		err = persistCmd(ctx, os.Args[2:])
	case "webhook-receiver":
		err = webhookCmd(ctx, os.Args[2:])
	case "hook-receiver":
		err = hookReceiverCmd(ctx, os.Args[2:])
	default:
		err = runCmd(ctx, cmd, os.Args[2:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  go run ./bench <scenario> [flags]   scenarios: idle rooms direct bigroom churn hostile
  go run ./bench merge [--out f.json] a.json b.json ...
  go run ./bench compare a.json b.json ...
  go run ./bench wait-quiet [--below 0.15] [--for 3s] [--max 2m]
  go run ./bench persist [--bin /tmp/partyline] [--rooms 10000] [--messages 64] [--size 200]
  go run ./bench webhook-receiver --secret S [--listen 127.0.0.1:9099] [--for 60s]
  go run ./bench hook-receiver [--listen 127.0.0.1:9100] [--status 204] [--body JSON] [--delay 0]
run "go run ./bench rooms -h" for the flags; bench/README.md describes them.
`)
}

func osStdout() *os.File { return os.Stdout }
