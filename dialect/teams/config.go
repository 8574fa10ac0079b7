package teams

import "fmt"

// MaxTeams bounds --teams.
const MaxTeams = 1 << 16

// Config is the teams dialect's configuration.
type Config struct {
	Teams int // number of teams, ids 1..Teams (--teams); 0 means the default
}

// Defaults returns the documented defaults.
func Defaults() Config { return Config{Teams: 2} }

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	if c.Teams == 0 {
		c.Teams = Defaults().Teams
	}
	if c.Teams < 1 || c.Teams > MaxTeams {
		return fmt.Errorf("teams %d: must be 1..%d", c.Teams, MaxTeams)
	}
	return nil
}
