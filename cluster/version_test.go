package cluster_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"partyline/assemble"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"partyline/internal/testutil"
)

// debianNATS runs Debian's packaged nats-server (2.9.x, older than
// cluster mode needs) with JetStream on a free port, or skips.
func debianNATS(t *testing.T) string {
	t.Helper()
	const bin = "/usr/sbin/nats-server"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s not installed (apt install nats-server): the old-server check is not exercised here", bin)
	}
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	if !strings.Contains(string(out), "v2.9.") && !strings.Contains(string(out), "v2.8.") {
		t.Skipf("%s is %s: not an old server", bin, bytes.TrimSpace(out))
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	await(t, 10*time.Second, "old nats-server up", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return url
}

// With a NATS server older than 2.10 a node refuses to start with one
// line naming the version it needs, instead of running half broken; the
// built binary exits with status 2.
func TestOldNATSRefused(t *testing.T) {
	url := debianNATS(t)
	cfg := testutil.Config(t)
	cfg.NATSURL, cfg.NodeID = url, runID+"-old"
	_, err := assemble.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "needs nats-server 2.10.0 or later") {
		t.Fatalf("assemble.New with an old NATS: %v", err)
	}
	t.Logf("refused: %v", err)

	if testing.Short() {
		return
	}
	bin := filepath.Join(t.TempDir(), "partyline")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--http", "", "--nats", url, "--node-id", "old", "--data-dir", t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v (stderr %q)", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "2.10.0") {
		t.Fatalf("stderr %q: want one line naming the required version", stderr.String())
	}
}

// The embedded server (the version the tests and cluster/cmd/natsd use)
// passes the check: every other cluster test starts nodes on it.
func TestCurrentNATSAccepted(t *testing.T) {
	ns := startNATS(t)
	node(t, ns.url, "a", nil)
}
