package channels

import (
	"fmt"
	"time"
)

// Config is the channels dialect's configuration. Zero values mean the
// defaults.
type Config struct {
	Heartbeat        time.Duration // heartbeat period (--channels-heartbeat)
	HeartbeatTimeout time.Duration // identity lost after no reply for (--channels-heartbeat-timeout)
	AuthDelay        time.Duration // identity authenticated after (--channels-auth-delay)
	// Now is the clock the timing rules read (tests set it); nil: time.Now.
	Now func() time.Time
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{Heartbeat: time.Second, HeartbeatTimeout: 5 * time.Second, AuthDelay: 5 * time.Second}
}

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	d := Defaults()
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"channels-heartbeat", &c.Heartbeat, d.Heartbeat},
		{"channels-heartbeat-timeout", &c.HeartbeatTimeout, d.HeartbeatTimeout},
		{"channels-auth-delay", &c.AuthDelay, d.AuthDelay},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 {
			return fmt.Errorf("%s %v: must be positive", f.name, *f.v)
		}
	}
	return nil
}
