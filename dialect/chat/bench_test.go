package chat_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/chat/chattest"
)

// BenchmarkAckedMessages measures durable, acknowledged one-to-one
// messages per second: conns connections each send msgs messages, one at
// a time (the next after the previous ack), so every message waits for an
// fsync and group commit is what lets them share one.
// Run: go test -run X -bench AckedMessages -benchtime 1x ./dialect/chat/
func BenchmarkAckedMessages(b *testing.B) {
	for _, conns := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			e := chattest.Start(b, nil)
			clients := make([]*websocket.Conn, conns)
			for i := range clients {
				c := e.Login(b, "/chat", fmt.Sprintf("sender%d", i))
				clients[i] = c.Conn
			}
			const msgs = 100
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				var wg sync.WaitGroup
				for i, c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := range msgs {
							c.WriteJSON(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": fmt.Sprintf("sink%d", i), "content": fmt.Sprint(k)})
							var m map[string]any
							if err := c.ReadJSON(&m); err != nil || m["msg"] != "Message sent" {
								b.Errorf("ack: %v %v", m, err)
								return
							}
						}
					}()
				}
				wg.Wait()
			}
			el := time.Since(start)
			b.ReportMetric(float64(b.N*conns*msgs)/el.Seconds(), "acked-msgs/s")
		})
	}
}
