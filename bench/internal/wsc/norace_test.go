//go:build !race

package wsc

const raceEnabled = false
