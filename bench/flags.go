package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/bench/internal/scenario"
)

// options are the command-line settings that are not scenario.Config.
type options struct {
	cfg        scenario.Config
	dialect    string
	size       string
	startAt    string
	out        string
	serverCmd  string
	serverLog  string
	serverWait time.Duration
	spawn      bool // --procs > 1 without --proc-index: run the children here
	quiet      bool
	cpuProfile string
	noAttacks  bool
}

// defaults that depend on the scenario; 0 in a flag means "use these".
var scenarioDefaults = map[string]struct {
	conns int
	rate  float64
	dur   time.Duration
}{
	"idle":    {19000, 0, 20 * time.Second},
	"rooms":   {19000, 1, 20 * time.Second},
	"direct":  {19000, 1, 20 * time.Second},
	"bigroom": {10000, 10, 20 * time.Second},
	"churn":   {0, 100, 20 * time.Second},
	"hostile": {10000, 3, 20 * time.Second},
	"chat":    {1000, 1, 20 * time.Second},
	"storm":   {2000, 1, 10 * time.Second},
}

func parseFlags(name string, args []string) (*options, error) {
	def, ok := scenarioDefaults[name]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(scenario.Names, ", "))
	}
	o := &options{}
	c := &o.cfg
	c.Scenario = name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "server `host:port` (loopback only); a comma-separated list spreads every room's members over the addresses (cluster nodes)")
	fs.StringVar(&o.dialect, "dialect", "party", "wire protocol: party, party-v2, rooms, channels, wsecho (the raw echo: --room-size 1) (chat: always chat)")
	fs.StringVar(&c.Label, "label", "", "name of the server under test, for the record")
	fs.BoolVar(&c.Compression, "compression", false, "offer permessage-deflate on every connection (partyline: run it with --compression); the record counts the connections that negotiated it")
	fs.StringVar(&c.RunID, "run-id", "", "client id prefix (default random)")
	fs.IntVar(&c.Conns, "conns", def.conns, "connections (all processes together)")
	fs.IntVar(&c.RoomSize, "room-size", 20, "members per room")
	fs.IntVar(&c.MaxClients, "max-clients", 0, "maxClients sent with create (0: the room size, -1: omit)")
	fs.Float64Var(&c.Rate, "rate", def.rate, "messages/s per sender (bigroom: per room; churn: cycles/s)")
	fs.IntVar(&c.Senders, "senders", 10, "bigroom: members that send")
	fs.StringVar(&o.size, "size", "100-200", "message payload `bytes`, N or MIN-MAX (uniform)")
	fs.Float64Var(&c.RampRate, "ramp", 2000, "new connections per second")
	fs.IntVar(&c.DialConc, "dial-conc", 64, "concurrent TCP connects")
	fs.IntVar(&c.SrcIPs, "src-ips", 8, "spread connections over this many loopback source addresses, 127.0.0.2 and up (0: let the kernel pick 127.0.0.1)")
	fs.IntVar(&c.Loops, "loops", 0, "event loops (0: the CPUs this process may use); GOMAXPROCS is raised to loops+1")
	fs.DurationVar(&c.Duration, "duration", def.dur, "measurement window (idle: hold time)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured sending before the window")
	fs.DurationVar(&c.Drain, "drain", 0, "wait up to this for in-flight deliveries (0: 2s, bigroom 5s)")
	fs.DurationVar(&c.Timeout, "timeout", 170*time.Second, "hard limit for the whole run")
	fs.StringVar(&o.startAt, "start-at", "", "start the window at this time (Unix seconds or RFC 3339), for multi-process runs")
	fs.IntVar(&c.Procs, "procs", 1, "generator processes sharing the run")
	fs.IntVar(&c.ProcIndex, "proc-index", -1, "this process's index; without it, --procs K runs K child processes and merges them")
	fs.BoolVar(&c.FindMax, "find-max", false, "raise the rate step by step until p99 > --max-p99 or a loss")
	fs.Float64Var(&c.RateMult, "rate-mult", 1.5, "find-max: rate multiplier per step")
	fs.DurationVar(&c.StepDur, "step", 8*time.Second, "find-max: window per step")
	fs.IntVar(&c.MaxSteps, "max-steps", 12, "find-max: most steps")
	fs.DurationVar(&c.MaxP99, "max-p99", 50*time.Millisecond, "find-max: worst acceptable p99")
	fs.BoolVar(&c.IdleRooms, "idle-rooms", false, "idle: put the connections in rooms of --room-size")
	fs.IntVar(&c.StableRooms, "stable-rooms", 100, "churn: rooms that stay")
	fs.IntVar(&c.StableSize, "stable-size", 5, "churn: stable members per room")
	fs.DurationVar(&c.Dwell, "dwell", time.Second, "churn: how long a churning client stays")
	fs.Float64Var(&c.AbruptFrac, "abrupt", 0.5, "churn: fraction that disconnect without leave")
	fs.IntVar(&c.StormJoins, "storm-joins", 5000, "storm: clients joining the one big room (the server's --party-max-clients must allow it)")
	fs.Float64Var(&c.StormRate, "storm-rate", 1000, "storm: their joins per second")
	fs.Float64Var(&c.ProbeRate, "probe-rate", 50, "storm: unrelated clients per second that connect and create a room of their own during the window")
	fs.Float64Var(&c.SlowFrac, "slow-frac", 0.01, "hostile: fraction of members that stop reading")
	fs.IntVar(&c.SlowRcvBuf, "slow-rcvbuf", 4096, "hostile: SO_RCVBUF of slow readers")
	fs.IntVar(&c.Dribblers, "dribblers", 20, "hostile: handshakes sent a byte at a time")
	fs.DurationVar(&c.DribbleEvery, "dribble-every", 100*time.Millisecond, "hostile: delay between dribbled bytes")
	fs.IntVar(&c.Oversize, "oversize", 10, "hostile: clients sending oversized frames in a loop")
	fs.IntVar(&c.OversizeLen, "oversize-len", 1<<20, "hostile: declared length of an oversized frame")
	fs.IntVar(&c.Flooders, "flooders", 10, "hostile: clients flooding their own room")
	fs.Float64Var(&c.FloodRate, "flood-rate", 2000, "hostile: messages/s per flooder")
	fs.BoolVar(&c.FloodInRooms, "flood-in-rooms", false, "hostile: each flooder takes a seat in a well-behaved room (spread over the rooms) and floods its members, instead of a room of its own")
	fs.IntVar(&c.Scanners, "scanners", 4, "hostile: connections joining random room codes as fast as answered")
	fs.IntVar(&c.ScanCodeLen, "scan-code-len", 4, "hostile: length of the scanned room codes (the server's --room-code-length)")
	fs.IntVar(&c.Silent, "silent", 100, "hostile: sockets that never send a byte, reconnecting when dropped")
	fs.IntVar(&c.Incomplete, "incomplete", 50, "hostile: connections that announce a 64 KiB frame and never finish it")
	fs.IntVar(&c.IncompleteBytes, "incomplete-bytes", 65000, "hostile: bytes of the unfinished frame sent at once")
	fs.DurationVar(&c.IncompleteEvery, "incomplete-every", 3*time.Second, "hostile: then one more byte per")
	fs.IntVar(&c.BusyReaders, "busy-readers", 10, "hostile: never-reading members of one busy room")
	fs.Float64Var(&c.BusyRate, "busy-rate", 1000, "hostile: messages/s sent into the busy room")
	fs.StringVar(&c.HTTPAddr, "http-addr", "", "hostile: the server's HTTP `host:port` (loopback only): idle connections and a /healthz prober (none: no HTTP attack)")
	fs.IntVar(&c.HTTPIdle, "http-idle", 300, "hostile: kept-alive idle connections to --http-addr")
	fs.DurationVar(&c.HTTPProbeEvery, "http-probe-every", 100*time.Millisecond, "hostile: /healthz probe period")
	fs.BoolVar(&o.noAttacks, "no-attacks", false, "hostile: no hostile client at all (a quiet baseline; the /healthz prober still runs with --http-addr)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "chat: the server's HS256 secret (tokens for u0..uN-1 are signed with it)")
	fs.Float64Var(&c.GroupFrac, "group-frac", 0.5, "chat: fraction of sends that are GROUP_CHAT to the sender's group of --room-size (the rest ONE_TO_ONE_CHAT to a random user)")
	fs.Float64Var(&c.MaxOther, "max-other", 0.25, "measure a window again when other processes used more `cores` than this during it (0: never)")
	fs.IntVar(&c.Retries, "retries", 2, "most repeats of a disturbed window")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server process to sample (CPU, RSS)")
	fs.StringVar(&o.serverCmd, "server-cmd", "", "start this server command (sh -c), sample it, stop it at the end")
	fs.StringVar(&o.serverLog, "server-log", "", "server-cmd output file (default: discard)")
	fs.DurationVar(&o.serverWait, "server-wait", 15*time.Second, "server-cmd: wait this long for the port")
	fs.StringVar(&o.out, "out", "", "write the JSON record to this file")
	fs.StringVar(&c.SeriesFile, "series", "", "write sampled (time, latency) pairs of the measured window to this CSV `file`")
	fs.Int64Var(&c.SeriesEvery, "series-every", 100, "with --series, keep every Nth delivery")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, o.finish()
}

func (o *options) finish() error {
	c := &o.cfg
	d, err := dialect.Lookup(o.dialect)
	if err != nil {
		return err
	}
	c.Dialect = d
	if c.Scenario == "chat" {
		c.Dialect = dialect.Chat{}
	}
	c.Addrs = strings.Split(c.Addr, ",")
	for _, a := range c.Addrs {
		if err := checkLoopback(a); err != nil {
			return err
		}
	}
	c.Addr = c.Addrs[0]
	if c.HTTPAddr != "" {
		if err := checkLoopback(c.HTTPAddr); err != nil {
			return fmt.Errorf("--http-addr: %w", err)
		}
	}
	if o.noAttacks {
		c.SlowFrac, c.Dribblers, c.Oversize, c.Flooders = 0, 0, 0, 0
		c.Scanners, c.Silent, c.Incomplete, c.HTTPIdle, c.BusyReaders = 0, 0, 0, 0, 0
	}
	for _, n := range []int{c.Scanners, c.Silent, c.Incomplete, c.HTTPIdle, c.BusyReaders, c.Dribblers, c.Oversize, c.Flooders} {
		if n < 0 || n > 20000 {
			return fmt.Errorf("hostile client counts must be 0..20000, got %d", n)
		}
	}
	if c.IncompleteBytes < 0 || c.IncompleteBytes > 64<<10 || c.IncompleteEvery <= 0 || c.HTTPProbeEvery <= 0 || c.ScanCodeLen < 1 {
		return errors.New("--incomplete-bytes must be 0..65536, --incomplete-every, --http-probe-every and --scan-code-len positive")
	}
	if c.SizeMin, c.SizeMax, err = parseSize(o.size); err != nil {
		return err
	}
	if c.Drain == 0 && c.Scenario == "bigroom" {
		c.Drain = 5 * time.Second
	}
	if c.RunID == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.RunID = "b" + hex.EncodeToString(b[:])
	}
	if c.Scenario == "churn" && c.Conns == 0 {
		c.Conns = c.StableRooms * c.StableSize
		c.RoomSize = c.StableSize
	}
	if o.startAt != "" {
		if c.StartAt, err = parseTime(o.startAt); err != nil {
			return err
		}
	}
	// gnet's loops block in epoll_wait holding their P until sysmon takes
	// it back (up to 10 ms): give the schedulers and dialers a P of their
	// own, or sends go out late.
	if c.Loops <= 0 {
		c.Loops = runtime.NumCPU()
	}
	if runtime.GOMAXPROCS(0) < c.Loops+1 {
		runtime.GOMAXPROCS(c.Loops + 1)
	}
	if c.Procs > 1 && c.ProcIndex < 0 {
		o.spawn = true
	}
	if c.SeriesFile == "" {
		c.SeriesEvery = 0
	}
	if c.ProcIndex < 0 {
		c.ProcIndex = 0
	}
	return nil
}

// checkLoopback refuses any target that is not a loopback address.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("--addr %s is not a loopback address: load may only target 127.0.0.1", addr)
		}
	}
	return nil
}

func parseSize(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if lo, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("--size %q: %w", s, err)
	}
	hi = lo
	if ok {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, fmt.Errorf("--size %q: %w", s, err)
		}
	}
	if lo < 1 || hi < lo {
		return 0, 0, fmt.Errorf("--size %q: need 1 <= MIN <= MAX", s)
	}
	return lo, hi, nil
}

func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("--start-at %q: want Unix seconds or RFC 3339", s)
	}
	return t, nil
}
