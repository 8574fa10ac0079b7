//go:build race

package wsc

// raceEnabled: the race detector slows the byte loops of the stream test
// by 20-50x, so it streams less (the straddling it checks is the same).
const raceEnabled = true
