package main

import (
	"flag"
	"strings"

	"partyline/webhook"
)

// webhookFlags registers the webhook sender's flags (package webhook).
func webhookFlags(fs *flag.FlagSet, w *webhook.Config) {
	fs.Var((*urlsFlag)(&w.URLs), "webhook-url", "POST room and member events (party, party-v2; rooms on a single node) to `URL`, repeatable: each event goes to every URL (needs --webhook-secret)")
	fs.Var((*urlsFlag)(&w.Secrets), "webhook-secret", "`SECRET`: the HMAC-SHA256 key signing every webhook delivery (Partyline-Signature); repeat it during a rotation to send one v1= per secret")
	fs.IntVar(&w.Queue, "webhook-queue", w.Queue, "webhook events queued or in delivery at most; past it events are dropped and counted (partyline_webhook_dropped_total{reason=\"full\"})")
	fs.IntVar(&w.Workers, "webhook-workers", w.Workers, "webhook deliveries in flight at once (each room has at most one per URL)")
	fs.DurationVar(&w.Timeout, "webhook-timeout", w.Timeout, "one webhook attempt must be answered within this")
	fs.IntVar(&w.MaxAttempts, "webhook-max-attempts", w.MaxAttempts, "attempts per webhook event and URL before it is dropped (reason=\"expired\")")
	fs.DurationVar(&w.MaxAge, "webhook-max-age", w.MaxAge, "a webhook event this old is not retried again (reason=\"expired\")")
	fs.DurationVar(&w.Drain, "webhook-drain", w.Drain, "graceful shutdown: queued webhook events are delivered for at most this long")
}

// urlsFlag is a repeatable string flag (from the environment, a
// comma-separated list).
type urlsFlag []string

func (f *urlsFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *urlsFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}
