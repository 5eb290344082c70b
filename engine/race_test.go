//go:build race

package engine

// raceEnabled: the race detector is on (sync.Pool then drops what is put
// back at random, so allocation counts do not hold).
const raceEnabled = true
