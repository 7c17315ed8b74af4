// Package policy decides, with Rego policies (OPA), which role pairs a workload may assume and who may run admin actions.
package policy
