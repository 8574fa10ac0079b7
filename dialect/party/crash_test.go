package party_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// partyBinary builds the server once per test.
func partyBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "partyline")
	if out, err := exec.Command("go", "build", "-o", bin, "partyline").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runParty runs the built server on a free port with dataDir and extra
// flags, and returns the process and its /party URL once it accepts.
func runParty(t *testing.T, bin, dataDir string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--http", "", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("ws://127.0.0.1:%d/party", port)
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil {
			c.Close()
			return cmd, url
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not accepting: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type wsMsg struct {
	Type      string          `json:"type"`
	Room      string          `json:"room"`
	Token     string          `json:"token"`
	Epoch     string          `json:"epoch"`
	Seq       int64           `json:"seq"`
	Recovered *bool           `json:"recovered"`
	Data      json.RawMessage `json:"data"`
	at        time.Time
}

// reader delivers a connection's messages on a channel until it fails.
func reader(c *websocket.Conn) <-chan wsMsg {
	ch := make(chan wsMsg, 4096)
	go func() {
		defer close(ch)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m wsMsg
			if json.Unmarshal(b, &m) == nil {
				m.at = time.Now()
				ch <- m
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan wsMsg, typ string) wsMsg {
	t.Helper()
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("connection closed waiting for %s", typ)
			}
			if m.Type == typ {
				return m
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s within 5s", typ)
		}
	}
}

// SIGKILL during a 1,000 msgs/s load: after a restart the room is back and
// a member recovers every frame the store had; what is missing was sent in
// the last --party-persist-interval (plus the commit in flight) before the
// kill.
func TestCrashLosesAtMostOneInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	const interval = 100 * time.Millisecond
	bin, dir := partyBinary(t), t.TempDir()
	flags := []string{"--party-persist-interval", interval.String(), "--party-history-size", "10000",
		"--party-history-bytes", "16777216", "--party-history-ttl", "10m", "--party-restore-grace", "30s"}
	cmd, url := runParty(t, bin, dir, flags...)

	host, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hin := reader(host)
	host.WriteJSON(map[string]any{"type": "create", "clientId": "host"})
	created := next(t, hin, "created")
	guest, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	gin := reader(guest)
	guest.WriteJSON(map[string]any{"type": "join", "clientId": "guest", "room": created.Room})
	joined := next(t, gin, "joined")

	// 1,000 messages a second from the host; the guest notes when each arrives.
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if host.WriteJSON(map[string]any{"type": "send", "data": n}) != nil {
				return
			}
		}
	}()
	live := map[int64]wsMsg{}
	var first int64
	killAt := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(killAt) {
		select {
		case m := <-gin:
			if m.Type == "message" {
				live[m.Seq] = m
				if first == 0 {
					first = m.Seq
				}
			}
		case <-time.After(time.Until(killAt)):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	_ = cmd.Wait()
	close(stop)
	for m := range gin { // what was already on its way to the guest
		if m.Type == "message" {
			live[m.Seq] = m
		}
	}

	_, url = runParty(t, bin, dir, flags...)
	g2, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	g2in := reader(g2)
	g2.WriteJSON(map[string]any{"type": "join", "clientId": "guest", "room": created.Room, "token": joined.Token,
		"since": map[string]any{"epoch": joined.Epoch, "seq": first}})
	rj := next(t, g2in, "joined")
	if rj.Recovered == nil || !*rj.Recovered || rj.Epoch != joined.Epoch {
		t.Fatalf("re-join after the crash: %+v, want recovered in epoch %s", rj, joined.Epoch)
	}
	replayed := map[int64]bool{}
	for done := false; !done; {
		select {
		case m := <-g2in:
			if m.Type != "message" {
				continue
			}
			if l, ok := live[m.Seq]; !ok || string(l.Data) != string(m.Data) {
				t.Fatalf("replayed seq %d data %s: live had %v %s", m.Seq, m.Data, ok, l.Data)
			}
			replayed[m.Seq] = true
		case <-time.After(time.Second):
			done = true
		}
	}
	window := interval + 150*time.Millisecond // one interval plus the commit in flight and delivery
	lost, worst := 0, time.Duration(0)
	for s, m := range live {
		if s <= first || replayed[s] {
			continue
		}
		lost++
		if age := killed.Sub(m.at); age > worst {
			worst = age
		}
	}
	t.Logf("%d messages seen live, %d replayed after SIGKILL, %d lost; the oldest lost arrived %v before the kill",
		len(live), len(replayed), lost, worst.Round(time.Millisecond))
	if worst > window {
		t.Fatalf("a message received %v before the kill was lost (window %v)", worst, window)
	}
	if len(replayed) < len(live)/2 {
		t.Fatalf("only %d of %d messages replayed", len(replayed), len(live))
	}
}
