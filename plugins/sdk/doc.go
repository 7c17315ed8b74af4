// Package sdk is the public identity-provider SDK of irsa-broker: the Provider
// interface, its request and response types, and the sentinel errors that cross
// the plugin boundary. It never imports anything from core/.
package sdk
