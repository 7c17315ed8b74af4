// Package bench holds end-to-end benchmarks that drive the dev stack over real
// HTTP and print their figures beside a baseline measured in the same run.
package bench
