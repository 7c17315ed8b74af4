// Package mapping stores which IAM role pairs each Domino organization maps to.
package mapping
