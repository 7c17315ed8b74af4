// Package sdktest is the conformance suite for identity providers: every
// provider runs it, both in-process and through the SDK's gRPC shims.
package sdktest
