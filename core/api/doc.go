// Package api is the broker's HTTP surface: the legacy routes of the existing
// service, the /v2 resources, JSON errors, and the server (TLS reload, limits).
package api
