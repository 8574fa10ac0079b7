//go:build race

package party

const raceEnabled = true
