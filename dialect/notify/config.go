package notify

import "fmt"

// Config is the notify dialect's configuration.
type Config struct {
	MaxBody int // largest HTTP API request body in bytes (413 beyond); 0 means the default
}

// Defaults returns the documented defaults.
func Defaults() Config { return Config{MaxBody: 64 << 10} }

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	if c.MaxBody == 0 {
		c.MaxBody = Defaults().MaxBody
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("notify max body %d: must be positive", c.MaxBody)
	}
	return nil
}
