package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue builds the Rego input document for in. It is exactly the JSON
// encoding of Input (TestInputValueMatchesJSON holds it to that), built
// directly because going through encoding/json costs more than the policy
// evaluation itself.
func inputValue(in Input) ast.Value {
	id := in.Identity
	identity := [][2]*ast.Term{
		ast.Item(ast.StringTerm("id"), ast.StringTerm(id.ID)),
		ast.Item(ast.StringTerm("username"), ast.StringTerm(id.Username)),
		ast.Item(ast.StringTerm("organizations"), stringsTerm(id.Organizations)),
		ast.Item(ast.StringTerm("admin"), ast.BooleanTerm(id.Admin)),
		ast.Item(ast.StringTerm("expiry"), ast.StringTerm(id.Expiry.Format(time.RFC3339Nano))),
	}
	if id.Email != "" {
		identity = append(identity, ast.Item(ast.StringTerm("email"), ast.StringTerm(id.Email)))
	}
	if len(id.Groups) > 0 {
		identity = append(identity, ast.Item(ast.StringTerm("groups"), stringsTerm(id.Groups)))
	}
	if len(id.Attributes) > 0 {
		identity = append(identity, ast.Item(ast.StringTerm("attributes"), mapTerm(id.Attributes)))
	}
	if id.Provider != "" {
		identity = append(identity, ast.Item(ast.StringTerm("provider"), ast.StringTerm(id.Provider)))
	}

	w := in.Workload
	workload := [][2]*ast.Term{
		ast.Item(ast.StringTerm("run_id"), ast.StringTerm(w.RunID)),
		ast.Item(ast.StringTerm("namespace"), ast.StringTerm(w.Namespace)),
		ast.Item(ast.StringTerm("service_account"), ast.StringTerm(w.ServiceAccount)),
	}
	if w.Type != "" {
		workload = append(workload, ast.Item(ast.StringTerm("workload_type"), ast.StringTerm(w.Type)))
	}
	if w.Pod != "" {
		workload = append(workload, ast.Item(ast.StringTerm("pod"), ast.StringTerm(w.Pod)))
	}
	if len(w.Labels) > 0 {
		workload = append(workload, ast.Item(ast.StringTerm("labels"), mapTerm(w.Labels)))
	}

	r := in.Request
	request := [][2]*ast.Term{
		ast.Item(ast.StringTerm("method"), ast.StringTerm(r.Method)),
		ast.Item(ast.StringTerm("path"), ast.StringTerm(r.Path)),
		ast.Item(ast.StringTerm("action"), ast.StringTerm(r.Action)),
	}
	if r.ID != "" {
		request = append(request, ast.Item(ast.StringTerm("id"), ast.StringTerm(r.ID)))
	}

	return ast.NewObject(
		ast.Item(ast.StringTerm("identity"), ast.ObjectTerm(identity...)),
		ast.Item(ast.StringTerm("workload"), ast.ObjectTerm(workload...)),
		ast.Item(ast.StringTerm("request"), ast.ObjectTerm(request...)),
	)
}

// stringsTerm encodes a string slice like encoding/json: nil is null.
func stringsTerm(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

func mapTerm(m map[string]string) *ast.Term {
	items := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		items = append(items, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
	}
	return ast.ObjectTerm(items...)
}
