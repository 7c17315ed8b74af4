// Package policies embeds the broker's default Rego policies and their tests.
package policies
