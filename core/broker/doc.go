// Package broker is the map use case and the mapping administration around it:
// authenticate, resolve the workload, decide grants, ensure trust, render.
package broker
