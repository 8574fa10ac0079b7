package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"partyline/dialect"
	"partyline/dialect/notify"
	"partyline/dialect/party"
)

// TestOpenAPIMatchesRoutes holds openapi.json to the handler: every
// documented path and method is routed to its own pattern (not the web
// pages' "/"), and every mounted pattern is documented.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	web := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux, routes := build(Config{Metrics: prometheus.NewRegistry(), Web: web,
		Dialects: []dialect.Dialect{party.New(party.Defaults()), party.NewV2(party.Defaults()), notify.New(notify.Defaults())}})

	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue // parameters, summary...
			}
			pattern := strings.ToUpper(method) + " " + path
			documented = append(documented, pattern)
			req := httptest.NewRequest(strings.ToUpper(method), strings.ReplaceAll(path, "{code}", "K7QX"), nil)
			if _, got := mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed to %q", pattern, got)
			}
		}
	}
	for _, p := range routes {
		if !slices.Contains(documented, p) {
			t.Errorf("route %s is not in openapi.json", p)
		}
	}
	if len(documented) != len(routes) {
		t.Errorf("%d documented operations, %d routes: %v vs %v", len(documented), len(routes), documented, routes)
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := New(Config{APIKey: "k"})
	req := httptest.NewRequest("GET", "/api/openapi.json", nil)
	req.RemoteAddr = "203.0.113.9:4000" // no key, not loopback: the document is public
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || !json.Valid(rec.Body.Bytes()) || rec.Body.Len() != len(openAPI) {
		t.Fatalf("GET /api/openapi.json: %d %q", rec.Code, rec.Header())
	}
}
