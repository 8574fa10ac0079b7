package main

// persist: what rooms that survive restarts cost. It starts the server
// binary with a fresh data directory, fills N party rooms with a full
// history (one connection per room at a time: create, send the history's
// worth of messages, drop the connection; the seat is kept), then reports
// the server's RSS per room, the history bytes it holds, the bytes the
// store takes per room after a graceful stop, and how long a restart with
// those rooms takes until the server accepts and has restored them.

import (
	"bufio"
	"context"

	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"partyline/bench/internal/procstat"
)

type persistResult struct {
	Rooms            int     `json:"rooms"`
	Messages         int     `json:"messages_per_room"`
	Size             int     `json:"payload_bytes"`
	FillSeconds      float64 `json:"fill_s"`
	RSSBaseKiB       int64   `json:"rss_base_kib"`
	RSSFullKiB       int64   `json:"rss_full_kib"`
	RSSPerRoom       float64 `json:"rss_per_room_bytes"`
	HistoryBytes     float64 `json:"history_bytes"`
	StopSeconds      float64 `json:"sigterm_exit_s"`
	StoreBytes       int64   `json:"store_bytes"`
	StorePerRoom     float64 `json:"store_bytes_per_room"`
	RestartAcceptS   float64 `json:"restart_accepting_s"`
	RestoreTookS     float64 `json:"restore_took_s"`
	StoreLoadS       float64 `json:"store_load_s"`
	RestoredRooms    int     `json:"restored_rooms"`
	RSSRestoredKiB   int64   `json:"rss_restored_kib"`
	SampleRoomsFound int     `json:"sample_rooms_found"`
}

func persistCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("persist", flag.ContinueOnError)
	bin := fs.String("bin", "/tmp/partyline", "server binary")
	rooms := fs.Int("rooms", 10000, "rooms to fill")
	msgs := fs.Int("messages", 64, "messages per room (the default history size)")
	size := fs.Int("size", 200, "payload bytes per message")
	conc := fs.Int("conc", 64, "rooms filled at once")
	port := fs.Int("port", 19400, "WebSocket port (HTTP: port+1)")
	extra := fs.String("server-flags", "", "more server flags")
	out := fs.String("out", "", "write the result as JSON here")
	keep := fs.Bool("keep", false, "keep the data directory (its path is printed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pl-persist-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("data directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	addr, haddr := fmt.Sprintf("127.0.0.1:%d", *port), fmt.Sprintf("127.0.0.1:%d", *port+1)
	flags := []string{"--listen", addr, "--http", haddr, "--data-dir", dir, "--party-seat-grace", "1h",
		"--party-restore-grace", "1h", "--log-level", "info"}
	flags = append(flags, strings.Fields(*extra)...)
	res := persistResult{Rooms: *rooms, Messages: *msgs, Size: *size}

	srv, err := startLogged(*bin, flags, addr)
	if err != nil {
		return err
	}
	defer srv.kill()
	base, _ := procstat.Read(srv.cmd.Process.Pid)
	res.RSSBaseKiB = base.RSS

	t0 := time.Now()
	codes := make([]string, *rooms)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *conc)
	payload := strings.Repeat("x", *size)
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *rooms || ctx.Err() != nil {
					return
				}
				code, err := fillRoom(addr, i, *msgs, payload)
				if err != nil {
					errs <- err
					return
				}
				codes[i] = code
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	res.FillSeconds = time.Since(t0).Seconds()
	time.Sleep(time.Second) // let the store's writer and the GC settle
	full, _ := procstat.Read(srv.cmd.Process.Pid)
	res.RSSFullKiB = full.RSS
	res.RSSPerRoom = float64(full.RSS-base.RSS) * 1024 / float64(*rooms)
	res.HistoryBytes = scrapeMetric(haddr, "partyline_history_bytes")

	t1 := time.Now()
	if err := srv.term(); err != nil {
		return err
	}
	res.StopSeconds = time.Since(t1).Seconds()
	res.StoreBytes = dirSize(filepath.Join(dir, "party"))
	res.StorePerRoom = float64(res.StoreBytes) / float64(*rooms)

	t2 := time.Now()
	srv2, err := startLogged(*bin, flags, addr)
	if err != nil {
		return err
	}
	defer srv2.kill()
	res.RestartAcceptS = time.Since(t2).Seconds()
	res.RestoredRooms, res.RestoreTookS, res.StoreLoadS = srv2.restored()
	st, _ := procstat.Read(srv2.cmd.Process.Pid)
	res.RSSRestoredKiB = st.RSS
	for i := 0; i < len(codes); i += max(1, len(codes)/100) {
		if roomExists(haddr, codes[i]) {
			res.SampleRoomsFound++
		}
	}
	_ = srv2.term()

	fmt.Printf("rooms %d x %d messages of %d B: filled in %.1fs\n", res.Rooms, res.Messages, res.Size, res.FillSeconds)
	fmt.Printf("RSS %d -> %d KiB: %.0f B per room; history held %.1f MiB (%.0f B per room)\n",
		res.RSSBaseKiB, res.RSSFullKiB, res.RSSPerRoom, res.HistoryBytes/(1<<20), res.HistoryBytes/float64(res.Rooms))
	fmt.Printf("SIGTERM -> exit %.2fs; store %.1f MiB = %.0f B per room\n", res.StopSeconds, float64(res.StoreBytes)/(1<<20), res.StorePerRoom)
	fmt.Printf("restart: accepting after %.2fs, restore took %.2fs (store load %.2fs) for %d rooms; RSS after restore %d KiB; %d of 100 sampled rooms found\n",
		res.RestartAcceptS, res.RestoreTookS, res.StoreLoadS, res.RestoredRooms, res.RSSRestoredKiB, res.SampleRoomsFound)
	if *out != "" {
		return writeJSON(*out, res)
	}
	return nil
}

// fillRoom creates room i, publishes n messages into it and drops the
// connection (the seat is kept); it returns the room code.
func fillRoom(addr string, i, n int, payload string) (string, error) {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/party", nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	id := "p" + strconv.Itoa(i)
	if err := c.WriteJSON(map[string]any{"type": "create", "clientId": id}); err != nil {
		return "", err
	}
	var m struct {
		Type string `json:"type"`
		Room string `json:"room"`
	}
	if err := c.ReadJSON(&m); err != nil || m.Type != "created" {
		return "", fmt.Errorf("create: %v %+v", err, m)
	}
	for k := range n {
		req := map[string]any{"type": "send", "data": payload}
		if k == n-1 { // the last one comes back: everything before it is in
			req["to"] = id
		}
		if err := c.WriteJSON(req); err != nil {
			return "", err
		}
	}
	for m.Type != "message" {
		if err := c.ReadJSON(&m); err != nil {
			return "", err
		}
	}
	return m.Room, nil
}

type loggedServer struct {
	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	log  []string
}

func startLogged(bin string, flags []string, addr string) (*loggedServer, error) {
	cmd := exec.Command(bin, flags...)
	pr, pw := io.Pipe()
	cmd.Stderr, cmd.Stdout = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &loggedServer{cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.log = append(s.log, sc.Text())
			s.mu.Unlock()
		}
	}()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("%s not accepting after 60s", bin)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restored reads the "rooms restored" log line: rooms, how long restoring
// took, and how much of it was reading the store.
func (s *loggedServer) restored() (int, float64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.log {
		if !strings.Contains(l, "rooms restored") {
			continue
		}
		var n int
		var took, load time.Duration
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "rooms="); ok {
				n, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(f, "took="); ok {
				took, _ = time.ParseDuration(v)
			}
			if v, ok := strings.CutPrefix(f, "load="); ok {
				load, _ = time.ParseDuration(v)
			}
		}
		return n, took.Seconds(), load.Seconds()
	}
	return 0, 0, 0
}

func (s *loggedServer) term() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(60 * time.Second):
		s.kill()
		return fmt.Errorf("server did not exit within 60s of SIGTERM")
	}
}

func (s *loggedServer) kill() { _ = s.cmd.Process.Kill() }

func scrapeMetric(haddr, name string) float64 {
	resp, err := http.Get("http://" + haddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			return v
		}
	}
	return 0
}

func roomExists(haddr, code string) bool {
	resp, err := http.Get("http://" + haddr + "/api/rooms/" + code)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
