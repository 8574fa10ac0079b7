// Command gws is the lxzan/gws comparison peer for the load generator:
// the party dialect on gws's event API.
//
//	go run ./bench/peers/gws --listen 127.0.0.1:9002
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"partyline/bench/peers/gws/peer"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9002", "listen `address`")
	maxClients := flag.Int("party-max-clients", 20000, "upper bound of maxClients")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	s := peer.New(peer.Config{MaxClients: *maxClients})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	log.Printf("gws peer listening on %s", *listen)
	if err := s.Serve(ln); err != nil {
		log.Fatal(err)
	}
}
