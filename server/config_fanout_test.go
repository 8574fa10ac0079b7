package server

import "testing"

// --fanout-min: 0 keeps routing's default, a negative value is refused.
func TestFanoutMinValidate(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{0, true}, {1, true}, {512, true}, {-1, false}} {
		cfg := Defaults()
		cfg.FanoutMin = tc.n
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("FanoutMin %d: %v", tc.n, err)
		}
	}
}
