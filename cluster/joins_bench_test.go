package cluster_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

// BenchmarkRoomsJoinsAcrossNodes measures /rooms joins into distinct rooms
// on two nodes at once: every join is a census write (a key-value round
// trip) before its "joined". 32 connections per node each join b.N/64
// rooms in turn; the figure is joins/s over the whole run.
//
//	go test -run '^$' -bench RoomsJoinsAcrossNodes -benchtime 4000x ./cluster/
func BenchmarkRoomsJoinsAcrossNodes(b *testing.B) {
	ns := startNATS(b)
	mut := func(c *server.Config) { c.Rooms.MaxPerConnection = 1 << 20 }
	nodes := []*server.Server{node(b, ns.url, "a", mut), node(b, ns.url, "b", mut)}
	const perNode = 32
	var conns []*websocket.Conn
	for _, s := range nodes {
		for i := 0; i < perNode; i++ {
			c := testutil.Dial(b, testutil.URL(s, 0, "/rooms"))
			c.Expect("connected")
			conns = append(conns, c.Conn)
		}
	}
	per := max(b.N/len(conns), 1)
	errs := make(chan error, len(conns))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- joinRooms(c, fmt.Sprintf("%s-%d-", runID, i), per)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(per*len(conns))/elapsed.Seconds(), "joins/s")
}

// joinRooms joins n rooms named prefix+i on c, one after the other.
func joinRooms(c *websocket.Conn, prefix string, n int) error {
	for i := 0; i < n; i++ {
		msg, _ := json.Marshal(map[string]string{"type": "join", "room": fmt.Sprint(prefix, i), "username": "u"})
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return err
		}
		for {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, p, err := c.ReadMessage()
			if err != nil {
				return err
			}
			var m struct{ Type string }
			if err := json.Unmarshal(p, &m); err != nil {
				return err
			}
			if m.Type == "joined" {
				break
			}
			if m.Type == "error" {
				return fmt.Errorf("join: %s", p)
			}
		}
	}
	return nil
}
