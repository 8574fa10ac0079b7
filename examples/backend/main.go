// Command backend is an example game backend for partyline: it receives
// partyline's webhooks (POST /webhook, signatures verified, events
// deduplicated by id and logged) and is a matchmaker (POST /match creates
// a room through partyline's rooms API). See README.md.
//
// Concurrency: everything runs on net/http's goroutines; the dedupe set
// and the verifier are safe from any of them.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:9000", "address of this backend (POST /webhook, POST /match)")
	secret := fs.String("secret", os.Getenv("PARTYLINE_WEBHOOK_SECRET"), "partyline's --webhook-secret (env PARTYLINE_WEBHOOK_SECRET)")
	api := fs.String("partyline", "http://127.0.0.1:8081", "partyline's HTTP listener (--http)")
	key := fs.String("api-key", os.Getenv("PARTYLINE_API_KEY"), "partyline's --api-key (env PARTYLINE_API_KEY; none: a loopback partyline answers without)")
	ws := fs.String("ws", "ws://127.0.0.1:8080", "partyline's WebSocket listener as players reach it (--listen)")
	dialect := fs.String("dialect", "party", "party or party-v2")
	dedupe := fs.Int("dedupe", 100_000, "event ids remembered to drop redelivered events")
	_ = fs.Parse(os.Args[1:])

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *secret == "" {
		log.Error("-secret (or PARTYLINE_WEBHOOK_SECRET) is required: the webhook receiver refuses unsigned events")
		os.Exit(2)
	}
	srv := &http.Server{
		Addr:              *addr,
		Handler:           routes(*secret, *dedupe, &Matchmaker{API: *api, Key: *key, WS: *ws, Dialect: *dialect}, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("backend listening", "addr", *addr, "partyline", *api, "ws", *ws)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
}

// routes is the backend's handler: POST /webhook and POST /match.
func routes(secret string, dedupe int, mm *Matchmaker, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhook", &Receiver{
		Verifier: &Verifier{Secret: []byte(secret)},
		Seen:     NewSeen(max(dedupe, 1)),
		Log:      log,
	})
	mux.Handle("/match", mm)
	return mux
}
