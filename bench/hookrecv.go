package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// hookReceiverCmd is `bench hook-receiver`: a join hook (partyline's
// --party-auth-url) that answers every POST with --status after --delay,
// for measuring what the hook adds to a join. It serves until interrupted
// and then prints how many requests it answered.
func hookReceiverCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hook-receiver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9100", "address to serve the hook on (loopback only)")
	status := fs.Int("status", http.StatusNoContent, "status of every answer (2xx approves, 4xx refuses)")
	body := fs.String("body", "", "body of every answer (e.g. {\"metadata\":{\"rank\":1}})")
	delay := fs.Duration("delay", 0, "wait this long before answering")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: want a loopback address and port", *listen)
	}
	if *status < 100 || *status > 599 || *delay < 0 {
		return errors.New("--status must be an HTTP status and --delay not negative")
	}
	h := &hookReceiver{status: *status, body: *body, delay: *delay}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("hook-receiver: answering %d on http://%s/\n", *status, ln.Addr())
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Printf("hook-receiver: %d requests answered, %d refused (not POST)\n", h.n.Load(), h.bad.Load())
	return nil
}

// hookReceiver answers every POST with status and body after delay.
type hookReceiver struct {
	status int
	body   string
	delay  time.Duration
	n, bad atomic.Int64 // answered, refused
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.bad.Add(1)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	if h.delay > 0 {
		time.Sleep(h.delay)
	}
	h.n.Add(1)
	if h.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(h.status)
	_, _ = io.WriteString(w, h.body)
}
