// Package polltest waits in tests for a condition to hold, polling it within
// the test's deadline, so that tests synchronise on a signal instead of
// sleeping.
package polltest
