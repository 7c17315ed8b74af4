// Package archtest checks the house rules on the package graph (DESIGN.md,
// "Rules of the house"): which package may import which. The rules are a pure
// function over a Graph (Check); Load builds the Graph of a module with
// `go list -deps -json`. Its tests run in `make lint`.
package archtest
