// Package builtin is the registry of the identity providers compiled into the
// broker (name -> constructor). The broker serves them as plugins of itself
// (`irsa-broker plugin NAME`), so built-in and third-party providers cross the
// same gRPC protocol.
package builtin
