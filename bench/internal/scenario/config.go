// Package scenario holds the load generator's scenarios (idle, rooms,
// direct, bigroom, churn, hostile) and the machinery they share: paced
// dialing, room setup, open-loop send scheduling on the event loops and
// measurement windows.
package scenario

import (
	"fmt"
	"io"
	"time"

	"partyline/bench/internal/dialect"
)

// Config is one run's parameters. main fills it from flags; Validate sets
// derived defaults.
type Config struct {
	Scenario string
	Addr     string // server host:port (127.0.0.1 only)
	// Addrs, when it has more than one address, spreads every room's
	// members over them (member slot i connects to Addrs[i % n]): one room
	// spans several nodes of a cluster. Addrs[0] == Addr.
	Addrs   []string
	Dialect dialect.Dialect // wire protocol adapter
	Label   string          // name of the server under test, for reports
	RunID   string          // prefix of client ids, unique per run
	// Compression offers permessage-deflate on every connection (the
	// server must run with --compression to accept it).
	Compression bool

	Conns      int     // connections (all processes together)
	RoomSize   int     // members per room
	MaxClients int     // maxClients sent with create; 0 means RoomSize, -1 omits it
	Rate       float64 // messages/s per sender (bigroom: per room; churn: cycles/s)
	Senders    int     // bigroom: members that send (0: 10)
	SizeMin    int     // message payload bytes (client frame payload)
	SizeMax    int

	RampRate float64       // new connections per second
	DialConc int           // concurrent TCP connects
	Loops    int           // event loops (0: GOMAXPROCS)
	SrcIPs   int           // loopback source addresses to spread connections over (127.0.0.2 ...)
	Duration time.Duration // measurement window (idle: the hold)
	Warmup   time.Duration // sending before the window starts (not measured)
	Drain    time.Duration // after the window, wait up to this for in-flight deliveries
	Timeout  time.Duration // hard bound on the whole run
	StartAt  time.Time     // multi-process runs: start the window at this time

	Procs     int // generator processes sharing the run
	ProcIndex int // this process's index in [0, Procs)

	// --find-max
	FindMax  bool
	RateMult float64       // rate multiplier between steps
	StepDur  time.Duration // window of each step
	MaxSteps int
	MaxP99   time.Duration // a step with a higher p99 is bad

	// idle
	IdleRooms bool // idle: put the connections in rooms of RoomSize

	// churn
	StableRooms int           // rooms that stay
	StableSize  int           // stable members per room
	Dwell       time.Duration // how long a churning client stays
	AbruptFrac  float64       // fraction of churners that disconnect without leave

	// storm
	StormJoins int     // clients joining the one big room
	StormRate  float64 // their joins per second
	ProbeRate  float64 // unrelated clients/s that connect and create a room during the storm

	// hostile
	SlowFrac        float64       // fraction of members that stop reading
	SlowRcvBuf      int           // SO_RCVBUF of the slow readers
	Dribblers       int           // connections that send their handshake a byte at a time
	DribbleEvery    time.Duration // delay between dribbled bytes
	Oversize        int           // connections that send frames over the size limit
	OversizeLen     int           // declared length of the oversized frame
	Flooders        int           // connections that send as fast as allowed
	FloodRate       float64       // messages/s per flooder
	FloodInRooms    bool          // flooders take a seat in the well-behaved rooms instead of rooms of their own
	Scanners        int           // connections joining random room codes
	ScanCodeLen     int           // length of the codes they try
	Silent          int           // sockets that never send a byte (reconnect when dropped)
	Incomplete      int           // connections that leave a 64 KiB frame unfinished
	IncompleteBytes int           // bytes of it sent at once
	IncompleteEvery time.Duration // then one byte per
	BusyReaders     int           // never-reading members of one busy room
	BusyRate        float64       // messages/s sent into that room
	HTTPAddr        string        // the server's HTTP listener ("": no HTTP attack or probe)
	HTTPIdle        int           // kept-alive idle connections to it
	HTTPProbeEvery  time.Duration // /healthz probe period

	// chat
	JWTSecret string  // HS256 secret to sign the users' tokens with
	GroupFrac float64 // fraction of sends that go to the sender's group

	// MaxOther: a window during which other processes used more cores
	// than this is measured again (after waiting for a quiet machine), at
	// most Retries more times. 0 disables the check.
	MaxOther float64
	Retries  int

	// SeriesEvery > 0 keeps every SeriesEvery-th delivery of the last
	// window as (time, latency) in windowResult.series (see --series).
	SeriesEvery int64
	SeriesFile  string

	ServerPID int       // server to sample (0: none)
	Log       io.Writer // progress lines (nil: none)
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	if c.Dialect == nil {
		return fmt.Errorf("no dialect")
	}
	if c.Procs < 1 {
		c.Procs = 1
	}
	if c.ProcIndex < 0 || c.ProcIndex >= c.Procs {
		return fmt.Errorf("--proc-index %d out of range for --procs %d", c.ProcIndex, c.Procs)
	}
	if c.Conns < 1 {
		return fmt.Errorf("--conns must be positive")
	}
	if c.RoomSize < 1 {
		return fmt.Errorf("--room-size must be positive")
	}
	if c.SizeMin < 1 || c.SizeMax < c.SizeMin {
		return fmt.Errorf("bad --size %d-%d", c.SizeMin, c.SizeMax)
	}
	if c.RampRate <= 0 {
		return fmt.Errorf("--ramp must be positive")
	}
	if c.DialConc < 1 {
		c.DialConc = 64
	}
	if c.Drain <= 0 {
		c.Drain = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 170 * time.Second
	}
	if c.Procs > 1 {
		// Processes measure in lockstep (--start-at): one of them repeating
		// a window would fall out of step, and the others count as "other
		// processes" anyway.
		c.MaxOther = 0
	}
	if c.FindMax && c.Procs > 1 {
		return fmt.Errorf("--find-max needs a single generator process")
	}
	if c.RateMult <= 1 {
		c.RateMult = 1.5
	}
	if c.MaxP99 <= 0 {
		c.MaxP99 = 50 * time.Millisecond
	}
	return nil
}

func (c *Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, time.Now().Format("15:04:05.000")+" "+format+"\n", a...)
	}
}
