package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"partyline/webhook"
)

// webhookCmd is a webhook receiver for measurements: it verifies every
// delivery's signature, counts events once by id, and reports the
// delivery rate and the delay from each event's "time" (its emission on
// the server, same machine's clock) to its arrival here.
//
//	go run ./bench webhook-receiver --listen 127.0.0.1:9099 --secret S [--for 60s]
func webhookCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("webhook-receiver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9099", "receiver `host:port` (loopback only); the server runs with --webhook-url http://host:port/")
	secret := fs.String("secret", "", "the server's --webhook-secret (required)")
	dur := fs.Duration("for", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("webhook-receiver: --secret is required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("webhook-receiver: --listen %q: a loopback host:port", *listen)
	}
	rc := &hookStats{seen: map[string]bool{}, types: map[string]int{}, delay: hdr.New(1, 600_000_000, 3)}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rc.handler(*secret), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("webhook-receiver listening on http://%s/\n", ln.Addr())
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	rc.print()
	return nil
}

type hookStats struct {
	mu          sync.Mutex
	seen        map[string]bool
	types       map[string]int
	dups, bad   int
	first, last time.Time
	delay       *hdr.Histogram // microseconds
}

func (rc *hookStats) handler(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		var e struct{ ID, Type, Time string }
		err := webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, now)
		if err == nil {
			err = json.Unmarshal(body, &e)
		}
		at, terr := time.Parse(time.RFC3339Nano, e.Time)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err != nil || terr != nil {
			rc.bad++
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		if rc.seen[e.ID] {
			rc.dups++
		} else {
			rc.seen[e.ID] = true
			rc.types[e.Type]++
			_ = rc.delay.RecordValue(max(now.Sub(at).Microseconds(), 1))
			if rc.first.IsZero() {
				rc.first = now
			}
			rc.last = now
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (rc *hookStats) print() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := len(rc.seen)
	span := rc.last.Sub(rc.first).Seconds()
	rate := 0.0
	if span > 0 {
		rate = float64(n) / span
	}
	ms := func(q float64) float64 { return float64(rc.delay.ValueAtQuantile(q)) / 1000 }
	fmt.Printf("events %d (duplicates %d, refused %d) over %.1fs: %.0f/s\n", n, rc.dups, rc.bad, span, rate)
	fmt.Printf("by type %v\n", rc.types)
	fmt.Printf("delay emit->received ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", ms(50), ms(90), ms(99), ms(99.9), float64(rc.delay.Max())/1000)
}
