//go:build !race

package workspan_test

const raceEnabled = false
