// Command natsd runs an embedded NATS server with JetStream for a local
// partyline cluster (benchmarks, docs examples, trying cluster mode on a
// machine without nats-server):
//
//	go run ./cluster/cmd/natsd --addr 127.0.0.1:4222 --store /tmp/pl-nats
//
// It logs "natsd ready" once it accepts clients and stops on SIGINT or
// SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	natsd "github.com/nats-io/nats-server/v2/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4222", "client listen `host:port`")
	store := flag.String("store", "", "JetStream store directory (default: a new temporary directory)")
	flag.Parse()
	host, p, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("natsd: --addr: %v", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		log.Fatalf("natsd: --addr port: %v", err)
	}
	dir := *store
	if dir == "" {
		if dir, err = os.MkdirTemp("", "natsd-"); err != nil {
			log.Fatal(err)
		}
	}
	ns, err := natsd.NewServer(&natsd.Options{Host: host, Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		log.Fatalf("natsd: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("natsd: not ready after 10s")
	}
	fmt.Fprintf(os.Stderr, "natsd ready url=%s store=%s\n", ns.ClientURL(), dir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
}
