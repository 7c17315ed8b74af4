// Package model holds the broker's nouns, pure and dependency-free: an IAM
// role ARN parsed and canonicalised once. Every other package takes its ARNs
// from here, so one role has one spelling everywhere a key is built from it
// (trust-writer queues, Leases, metrics, pruning).
package model
