// Command gorilla is the gorilla/websocket comparison peer for the
// load generator: the party dialect, a goroutine pair per connection.
//
//	go run ./bench/peers/gorilla --listen 127.0.0.1:9001
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"partyline/bench/peers/gorilla/peer"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "listen `address`")
	maxClients := flag.Int("party-max-clients", 20000, "upper bound of maxClients")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: peer.Handler(peer.Config{MaxClients: *maxClients}),
		ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("gorilla peer listening on %s", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
