package party

import "fmt"

// Config is the party dialect's configuration.
type Config struct {
	CodeLength      int  // room code length (--room-code-length)
	MaxClients      int  // upper bound (and default) of maxClients (--party-max-clients)
	StrictReconnect bool // a token is required to replace a clientId
	MaxState        int  // largest retained state, encoded bytes
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{CodeLength: 4, MaxClients: 1000, MaxState: 16 << 10}
}

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	d := Defaults()
	if c.CodeLength == 0 {
		c.CodeLength = d.CodeLength
	}
	if c.CodeLength < 3 || c.CodeLength > 16 {
		return fmt.Errorf("room-code-length %d: must be 3..16", c.CodeLength)
	}
	if c.MaxClients == 0 {
		c.MaxClients = d.MaxClients
	}
	if c.MaxClients < 1 {
		return fmt.Errorf("party-max-clients %d: must be at least 1", c.MaxClients)
	}
	if c.MaxState <= 0 {
		c.MaxState = d.MaxState
	}
	return nil
}
