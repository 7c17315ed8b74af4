// Package sdk is the public identity-provider SDK of irsa-broker: the Provider
// interface and its plain request and response types, the sentinel errors that
// cross the plugin boundary (as gRPC status codes, back as the same sentinels),
// the go-plugin handshake and versioned plugin sets, and Serve for plugin
// mains. The protobuf code and the gRPC shims are internal. It never imports
// anything from core/. See docs/plugins.md and examples/identity-plugin.
package sdk
