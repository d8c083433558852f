//go:build race

package workspan_test

// raceEnabled shrinks the large-file story under the race detector, which
// slows spreadsheet parsing tenfold; `make test` also runs it full size
// without the detector.
const raceEnabled = true
