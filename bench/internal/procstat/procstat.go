// Package procstat samples a process's CPU time and resident memory from
// /proc (Linux only).
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is 100
// on every Linux architecture Go supports.
const clkTck = 100

// Sample is one reading of a process.
type Sample struct {
	At     time.Time     `json:"-"`
	T      float64       `json:"t"`             // seconds since the sampler started
	CPU    time.Duration `json:"-"`             // user+sys since the process started
	CPUSec float64       `json:"cpu_s"`         // CPU as seconds
	SysSec float64       `json:"sys_s"`         // of which in the kernel
	RSS    int64         `json:"rss_kib"`       // VmRSS in KiB
	FDs    int           `json:"fds,omitempty"` // open file descriptors (explicit samples only)
	Thr    int           `json:"threads"`       // threads
}

// Read samples pid once (pid 0 means this process).
func Read(pid int) (Sample, error) {
	if pid == 0 {
		pid = os.Getpid()
	}
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. utime and stime are fields 14 and 15 (1-based).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("procstat: bad /proc/%d/stat", pid)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 18 {
		return s, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	s.Thr, _ = strconv.Atoi(string(f[17]))
	s.CPU = time.Duration(ut+st) * (time.Second / clkTck)
	s.CPUSec = s.CPU.Seconds()
	s.SysSec = (time.Duration(st) * (time.Second / clkTck)).Seconds()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	if j := bytes.Index(status, []byte("VmRSS:")); j >= 0 {
		line := status[j+6:]
		if k := bytes.IndexByte(line, '\n'); k >= 0 {
			line = line[:k]
		}
		fs := bytes.Fields(line)
		if len(fs) > 0 {
			s.RSS, _ = strconv.ParseInt(string(fs[0]), 10, 64)
		}
	}
	return s, nil
}

// CountFDs returns how many file descriptors pid has open, -1 if unknown.
// It lists /proc/PID/fd, which is slow with many descriptors: call it
// once in a while, not from the periodic sampler.
func CountFDs(pid int) int {
	if pid == 0 {
		pid = os.Getpid()
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// SelfCPU is this process's user+sys time from getrusage (microsecond
// resolution, all threads).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Sampler reads a process periodically and keeps the series.
type Sampler struct {
	pid   int
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex // guards the following
	samples []Sample
	peak    int64
	err     error
}

// Start samples pid every interval until Stop.
func Start(pid int, interval time.Duration) *Sampler {
	s := &Sampler{pid: pid, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval)
	return s
}

func (s *Sampler) run(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Now()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Now takes a sample immediately, records it and returns it.
func (s *Sampler) Now() Sample {
	smp, err := Read(s.pid)
	smp.T = smp.At.Sub(s.start).Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return smp
	}
	s.samples = append(s.samples, smp)
	s.peak = max(s.peak, smp.RSS)
	return smp
}

// Stop ends sampling and returns the series, the peak RSS (KiB) and the
// first error seen (the process may have exited).
func (s *Sampler) Stop() ([]Sample, int64, error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.peak, s.err
}

// Peak returns the peak RSS seen so far in KiB.
func (s *Sampler) Peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Machine is a reading of the whole machine's CPU time since boot.
type Machine struct {
	Busy      time.Duration // user, nice, system, irq, softirq
	Steal     time.Duration // taken by the hypervisor
	Softirqd  time.Duration // the ksoftirqd threads (deferred network work)
	ReadError error
}

// ReadMachine reads /proc/stat and the ksoftirqd threads.
func ReadMachine() Machine {
	var m Machine
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		m.ReadError = err
		return m
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		m.ReadError = fmt.Errorf("procstat: bad /proc/stat")
		return m
	}
	tick := func(i int) time.Duration {
		v, _ := strconv.ParseInt(string(f[i]), 10, 64)
		return time.Duration(v) * (time.Second / clkTck)
	}
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		m.Busy += tick(i)
	}
	m.Steal = tick(8)
	for _, pid := range softirqdPIDs() {
		if s, err := Read(pid); err == nil {
			m.Softirqd += s.CPU
		}
	}
	return m
}

var (
	softirqdOnce sync.Once
	softirqd     []int
)

// softirqdPIDs finds the ksoftirqd/N kernel threads once.
func softirqdPIDs() []int {
	softirqdOnce.Do(func() {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err == nil && bytes.HasPrefix(comm, []byte("ksoftirqd/")) {
				softirqd = append(softirqd, pid)
			}
		}
	})
	return softirqd
}

// MachineBusy returns the CPU time all processes on the machine have used
// (user, nice, system, irq, softirq) since boot.
func MachineBusy() (time.Duration, error) {
	m := ReadMachine()
	return m.Busy, m.ReadError
}

// PeakRSS returns a process's peak resident set (VmHWM) in KiB.
func PeakRSS(pid int) int64 {
	if pid == 0 {
		pid = os.Getpid()
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	j := bytes.Index(status, []byte("VmHWM:"))
	if j < 0 {
		return 0
	}
	line, _, _ := bytes.Cut(status[j+6:], []byte("\n"))
	fs := bytes.Fields(line)
	if len(fs) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(fs[0]), 10, 64)
	return v
}

// TCPCounters reads the kernel's TcpExt and Tcp counters from
// /proc/net/netstat and /proc/net/snmp (whole network namespace).
func TCPCounters() map[string]int64 {
	out := map[string]int64{}
	for _, f := range []string{"/proc/net/netstat", "/proc/net/snmp"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := bytes.Split(b, []byte("\n"))
		for i := 0; i+1 < len(lines); i += 2 {
			names, vals := bytes.Fields(lines[i]), bytes.Fields(lines[i+1])
			if len(names) != len(vals) || len(names) == 0 {
				continue
			}
			prefix := string(bytes.TrimSuffix(names[0], []byte(":")))
			if prefix != "TcpExt" && prefix != "Tcp" {
				continue
			}
			for j := 1; j < len(names); j++ {
				v, err := strconv.ParseInt(string(vals[j]), 10, 64)
				if err == nil {
					out[prefix+"."+string(names[j])] = v
				}
			}
		}
	}
	return out
}

// TCPDelta returns the counters of interest that changed between a and b.
func TCPDelta(a, b map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for _, k := range []string{
		"TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPBacklogDrop",
		"TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnMemory",
		"TcpExt.TCPAbortOnTimeout", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop",
		"TcpExt.TCPReqQFullDrop", "TcpExt.TCPTimeouts", "TcpExt.PruneCalled",
		"Tcp.AttemptFails", "Tcp.EstabResets", "Tcp.RetransSegs", "Tcp.OutRsts",
	} {
		if v := b[k] - a[k]; v != 0 {
			d[k] = v
		}
	}
	return d
}
