//go:build !race

package esql

const raceEnabled = false
