//go:build race

package throttle

// arrivalRequests is the size of TestArrivalsNeverExceedTheLimit under the
// race detector.
const arrivalRequests = 20_000
