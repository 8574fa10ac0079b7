package server_test

import (
	"partyline/assemble"
	"strings"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// TestMaxConnections: connections over the cap are answered 503 and closed
// at once; closing one frees a slot.
func TestMaxConnections(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.MaxConnections = 3 })
	url := testutil.URL(s, 0, "/party")
	var cs []*testutil.Client
	for range 3 {
		cs = append(cs, testutil.Dial(t, url))
	}
	_, err := testutil.TryDial(t, url, nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("4th connection: want HTTP 503, got %v", err)
	}
	cs[0].Conn.Close()
	testutil.Eventually(t, func() bool {
		c, err := testutil.TryDial(t, url, nil)
		if err == nil {
			c.Conn.Close()
		}
		return err == nil
	})
}

// TestPortInUse: a taken port is a clear error from Run, not a silent
// second listener.
func TestPortInUse(t *testing.T) {
	a := testutil.Start(t, nil)
	cfg := server.Defaults()
	cfg.Listeners = []server.Listener{{Addr: a.Addrs()[0].String()}}
	cfg.HTTPAddr = ""
	cfg.DataDir = t.TempDir()
	s, err := assemble.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("want address already in use, got %v", err)
	}
}
