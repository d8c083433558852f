//go:build !race

package throttle

// arrivalRequests is the size of TestArrivalsNeverExceedTheLimit.
const arrivalRequests = 100_000
