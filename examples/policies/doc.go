// Package policies holds example Rego policies for --policy-dir, with their
// tests; policies_test.go runs them so the examples cannot rot.
package policies
