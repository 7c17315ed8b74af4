// Package backoff computes capped exponential retry delays with jitter and
// abstracts the clock so retry loops can be tested without sleeping.
package backoff
