package chat_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/chat/chattest"
)

// buildBinary builds the server into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "partyline")
	if out, err := exec.Command("go", "build", "-o", bin, "partyline").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// mountTmpfs mounts a tmpfs of size bytes and unmounts it when the test
// ends; it skips the test where mounting is not permitted (not root).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs (needs root, as on CI): %v %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes zeros to dir/filler until the filesystem is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := len(buf) / 2; n > 0; n /= 2 { // the last blocks too
		_, _ = f.Write(buf[:n])
	}
	return p
}

// proc is a running server binary whose log lines are counted.
type proc struct {
	cmd      *exec.Cmd
	ws, http string // ws://host:port, http://host:port
	lines    atomic.Int64
	mu       sync.Mutex
	tail     []string
	exited   chan struct{}
	exitErr  error
}

func (p *proc) logTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// runBinary starts bin with args on free ports (WebSocket and HTTP) and
// waits until it accepts connections.
func runBinary(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	port, hport := freePort(t), freePort(t)
	p := &proc{ws: fmt.Sprintf("ws://127.0.0.1:%d", port), http: fmt.Sprintf("http://127.0.0.1:%d", hport), exited: make(chan struct{})}
	args = append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--http", fmt.Sprintf("127.0.0.1:%d", hport),
		"--jwt-secret", chattest.Secret, "--log-level", "info"}, args...)
	p.cmd = exec.Command(bin, args...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines.Add(1)
			p.mu.Lock()
			p.tail = append(p.tail, sc.Text())
			if len(p.tail) > 40 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("server log tail:\n%s", p.logTail())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial(p.ws+"/chat", nil)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("server exited: %v\n%s", p.exitErr, p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not accepting: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("server exited: %v\n%s", p.exitErr, p.logTail())
	default:
	}
}

// cpuSeconds is the CPU time the process used so far (/proc/pid/stat).
func (p *proc) cpuSeconds(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// wsClient is a gorilla client for the binary tests.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialWS(t *testing.T, url string) *wsClient {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{t, c}
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	if err := w.c.WriteJSON(v); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) read() map[string]any {
	w.t.Helper()
	var m map[string]any
	w.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := w.c.ReadJSON(&m); err != nil {

		w.t.Fatalf("read: %v", err)
	}
	return m
}

func chatLogin(t *testing.T, base, user string) *wsClient {
	t.Helper()
	c := dialWS(t, base+"/chat")
	c.send(map[string]any{"type": "AUTH", "token": chattest.Token(t, user, time.Hour)})
	if m := c.read(); m["type"] != "SUCCESS" {
		t.Fatalf("login %s: %v", user, m)
	}
	return c
}

// chatSend sends a one-to-one message and returns the reply: SUCCESS or
// ERROR, nothing else and never silence.
func chatSend(t *testing.T, c *wsClient, content string) map[string]any {
	t.Helper()
	c.send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": content})
	m := c.read()
	if m["type"] != "SUCCESS" && m["type"] != "ERROR" {
		t.Fatalf("reply %v", m)
	}
	return m
}

func isStorageFull(m map[string]any) bool {
	s, _ := m["msg"].(string)
	return m["type"] == "ERROR" && strings.HasPrefix(s, "storage full")
}

// partyOK creates a party room on the binary and exchanges a message.
func partyOK(t *testing.T, base string) {
	t.Helper()
	a := dialWS(t, base+"/party")
	a.send(map[string]any{"type": "create", "clientId": "a", "maxClients": 2})
	m := a.read()
	if m["type"] != "created" {
		t.Fatalf("party create: %v", m)
	}
	b := dialWS(t, base+"/party")
	b.send(map[string]any{"type": "join", "clientId": "b", "room": m["room"]})
	if m := b.read(); m["type"] != "joined" {
		t.Fatalf("party join: %v", m)
	}
	b.send(map[string]any{"type": "send", "data": "hi"})
	for {
		m := a.read()
		if m["type"] == "message" {
			return
		}
		if m["type"] != "peer_joined" {
			t.Fatalf("party: %v", m)
		}
	}
}

func healthStatus(t *testing.T, base string) string {
	t.Helper()
	return healthz(t, base+"/healthz")["status"].(string)
}

// TestDiskFullBinary runs the binary with its store on a 24 MiB tmpfs and
// a 4 MiB floor, then fills the tmpfs: chat writes get "storage full"
// ERRORs (never silence), /healthz is degraded, the party dialect keeps
// serving, the log stays quiet while writes are refused, and once the
// filler is deleted chat writes succeed again by themselves.
func TestDiskFullBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	mnt := mountTmpfs(t, 24<<20)
	bin := buildBinary(t)
	p := runBinary(t, bin, "--data-dir", filepath.Join(mnt, "data"), "--store-min-free", "4MiB", "--drain", "1s",
		"--max-messages-per-second", "0") // the test writes as fast as it is answered, well over the default rate
	alice := chatLogin(t, p.ws, "alice")
	if m := chatSend(t, alice, "before"); m["type"] != "SUCCESS" {
		t.Fatalf("before the disk fills: %v", m)
	}
	if s := healthStatus(t, p.http); s != "ok" {
		t.Fatalf("healthz before: %s", s)
	}
	filler := fillDisk(t, mnt)
	content := strings.Repeat("x", 8<<10)
	refused := false
	for i := 0; i < 50 && !refused; i++ {
		refused = isStorageFull(chatSend(t, alice, content))
	}
	if !refused {
		t.Fatal("no storage full ERROR after the disk filled")
	}
	if s := healthStatus(t, p.http); s != "degraded" {
		t.Fatalf("healthz on a full disk: %s", s)
	}
	partyOK(t, p.ws)

	// Refused writes for 3 s: count the log lines.
	lines0, cpu0, start := p.lines.Load(), p.cpuSeconds(t), time.Now()
	n := 0
	for time.Since(start) < 3*time.Second {
		if m := chatSend(t, alice, content); !isStorageFull(m) {
			t.Fatalf("write on a full disk: %v", m)
		}
		n++
	}
	el := time.Since(start)
	lines, cpu := p.lines.Load()-lines0, p.cpuSeconds(t)-cpu0
	t.Logf("full disk: %d writes refused in %v, %d log lines (%.0f/min), CPU %.0f%%", n, el.Round(time.Millisecond), lines, float64(lines)/el.Minutes(), 100*cpu/el.Seconds())
	if lines > 6 {
		t.Fatalf("%d log lines in %v of refused writes:\n%s", lines, el, p.logTail())
	}
	p.alive(t)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := chatSend(t, alice, "after")
		if m["type"] == "SUCCESS" {
			break
		}
		if !isStorageFull(m) || time.Now().After(deadline) {
			t.Fatalf("after space returned: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := healthStatus(t, p.http); s != "ok" {
		t.Fatalf("healthz after space returned: %s", s)
	}
	p.alive(t)
}

// TestSIGTERMOnFullDisk fills the store's disk with no floor at all
// (--store-min-free 0, so no ballast either: ENOSPC reaches Pebble, which
// treats a failed WAL write as fatal): chat writes are answered (SUCCESS
// or ERROR, never silence), the process neither panics nor exits, party
// goes on, and SIGTERM with chat clients connected exits within --drain
// plus --store-close-timeout (plus a few seconds of engine stop). Then the
// binary restarts on the still-full disk: chat requests get replies and
// the process neither spins nor floods its log. Without root (no tmpfs)
// the disk is "full" by a floor above any free space instead.
func TestSIGTERMOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	var dataDir string
	floor := "0"
	var mnt, filler string
	if os.Geteuid() == 0 {
		mnt = mountTmpfsOrEmpty(t, 24<<20)
	}
	if mnt == "" {
		dataDir, floor = t.TempDir(), "1000000GiB"
		t.Log("no tmpfs: the disk is full by --store-min-free above any free space")
	} else {
		dataDir = filepath.Join(mnt, "data")
	}
	const drain, closeTimeout = time.Second, 2 * time.Second
	args := []string{"--data-dir", dataDir, "--store-min-free", floor, "--drain", drain.String(), "--store-close-timeout", closeTimeout.String()}
	p := runBinary(t, bin, args...)
	alice := chatLogin(t, p.ws, "alice")
	if mnt != "" {
		if m := chatSend(t, alice, "before"); m["type"] != "SUCCESS" {
			t.Fatalf("before the disk fills: %v", m)
		}
		filler = fillDisk(t, mnt)
	}
	content := strings.Repeat("y", 16<<10)
	refused := 0
	for i := 0; i < 400 && refused < 5; i++ {
		if m := chatSend(t, alice, content); isStorageFull(m) {
			refused++
		} else if m["type"] == "ERROR" {
			t.Logf("other error: %v", m)
		}
	}
	if refused == 0 {
		t.Fatalf("no storage full ERROR on a full disk\n%s", p.logTail())
	}
	p.alive(t)
	partyOK(t, p.ws)
	if s := healthStatus(t, p.http); s != "degraded" {
		t.Fatalf("healthz: %s", s)
	}

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	bound := drain + closeTimeout + 7*time.Second // + engine stop (≤5s) and HTTP close
	select {
	case <-p.exited:
	case <-time.After(bound):
		t.Fatalf("no exit within %v of SIGTERM on a full disk\n%s", bound, p.logTail())
	}
	took := time.Since(start)
	t.Logf("SIGTERM on a full disk: exited in %v (%v)", took.Round(time.Millisecond), p.exitErr)
	if p.exitErr != nil {
		t.Fatalf("exit: %v\n%s", p.exitErr, p.logTail())
	}

	// Restart on the still-full disk.
	p2 := runBinary(t, bin, args...)
	bob := chatLogin(t, p2.ws, "bob")
	lines0, cpu0, t0 := p2.lines.Load(), p2.cpuSeconds(t), time.Now()
	for time.Since(t0) < 3*time.Second {
		bob.send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "alice", "content": "x"})
		if m := bob.read(); m["type"] != "ERROR" && m["type"] != "SUCCESS" {
			t.Fatalf("after restart on a full disk: %v", m)
		}
		bob.send(map[string]any{"type": "GET_ONE_TO_ONE_HISTORY", "to": "alice"})
		if m := bob.read(); m["type"] != "ONE_TO_ONE_CHAT_HISTORY" && m["type"] != "ERROR" {
			t.Fatalf("history after restart on a full disk: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(t0)
	lines, cpu := p2.lines.Load()-lines0, p2.cpuSeconds(t)-cpu0
	t.Logf("restarted on a full disk: %d log lines in %v (%.0f/min), CPU %.0f%%", lines, el.Round(time.Millisecond), float64(lines)/el.Minutes(), 100*cpu/el.Seconds())
	if lines > 10 || cpu/el.Seconds() > 0.5 {
		t.Fatalf("restarted on a full disk: %d log lines, CPU %.0f%%\n%s", lines, 100*cpu/el.Seconds(), p2.logTail())
	}
	partyOK(t, p2.ws)
	p2.alive(t)
	if filler == "" {
		return
	}
	// Space back: the store opens (retried at most once a second) and
	// chat writes succeed without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		bob.send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "alice", "content": "space is back"})
		m := bob.read()
		if m["type"] == "SUCCESS" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after space returned: %v\n%s", m, p2.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := healthStatus(t, p2.http); s != "ok" {
		t.Fatalf("healthz after space returned: %s", s)
	}
}

// mountTmpfsOrEmpty is mountTmpfs returning "" instead of skipping.
func mountTmpfsOrEmpty(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).Run(); err != nil {
		return ""
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}
