package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"partyline/bench/internal/scenario"
	"partyline/bench/internal/stats"
)

func runCmd(ctx context.Context, name string, args []string) error {
	o, err := parseFlags(name, args)
	if err != nil {
		return err
	}
	if !o.quiet {
		o.cfg.Log = os.Stderr
	}
	var srv *serverProc
	if o.serverCmd != "" {
		if srv, err = startServer(o); err != nil {
			return err
		}
		o.cfg.ServerPID = srv.pid
		defer srv.stop() // no-op after the explicit stop below
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var rep *stats.Report
	if o.spawn {
		rep, err = spawnRun(ctx, o, args)
	} else {
		rep, err = scenario.Run(ctx, &o.cfg)
	}
	if rep == nil {
		return err
	}
	rep.Args = append([]string{name}, args...)
	rep.Host = hostInfo()
	if srv != nil {
		rep.Server.Cmd = o.serverCmd
		if msg := srv.stop(); msg != "" {
			rep.Note("server: %s", msg)
		}
	}
	printReport(os.Stdout, rep)
	if o.out != "" {
		if werr := writeJSON(o.out, rep); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readReport(path string) (*stats.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r stats.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// serverProc is a server started with --server-cmd.
type serverProc struct {
	cmd  *exec.Cmd
	pid  int
	done chan error
	log  *os.File
}

func startServer(o *options) (*serverProc, error) {
	cmd := exec.Command("/bin/sh", "-c", "exec "+o.serverCmd)
	sp := &serverProc{cmd: cmd, done: make(chan error, 1)}
	if o.serverLog != "" {
		f, err := os.Create(o.serverLog)
		if err != nil {
			return nil, err
		}
		sp.log = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--server-cmd: %w", err)
	}
	sp.pid = cmd.Process.Pid
	go func() { sp.done <- cmd.Wait() }()
	deadline := time.Now().Add(o.serverWait)
	for {
		c, err := net.DialTimeout("tcp", o.cfg.Addr, time.Second) // the first address: --server-cmd starts one server
		if err == nil {
			c.Close()
			return sp, nil
		}
		select {
		case err := <-sp.done:
			sp.done <- err
			return nil, fmt.Errorf("--server-cmd exited before listening: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			sp.stop()
			return nil, fmt.Errorf("--server-cmd: %s not accepting after %v", o.cfg.Addr, o.serverWait)
		}
	}
}

// stop sends SIGTERM, waits for a graceful exit (then SIGKILL) and says
// how the server ended if that is worth a note.
func (sp *serverProc) stop() string {
	if sp.cmd == nil {
		return ""
	}
	defer func() {
		sp.cmd = nil
		if sp.log != nil {
			sp.log.Close()
		}
	}()
	_ = sp.cmd.Process.Signal(syscall.SIGTERM)
	t0 := time.Now()
	select {
	case err := <-sp.done:
		if err != nil {
			return fmt.Sprintf("exit after SIGTERM: %v (%.1fs)", err, time.Since(t0).Seconds())
		}
		return ""
	case <-time.After(20 * time.Second):
		_ = sp.cmd.Process.Kill()
		<-sp.done
		return "did not exit within 20s of SIGTERM; killed"
	}
}

func hostInfo() map[string]any {
	h := map[string]any{
		"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0), "num_cpu_affinity": runtime.NumCPU(),
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		h["cpus_online"] = strings.TrimSpace(string(b))
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		h["kernel"] = utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		h["mem"] = strings.Join(strings.Fields(line)[1:], " ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				h["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return h
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
