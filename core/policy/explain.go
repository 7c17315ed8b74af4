package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// Explain evaluates query (GrantsQuery or AllowQuery) for in against snap
// with the serving policy and returns OPA's trace of the evaluation, for
// `irsactl policy eval --explain`. It is slow (a query is prepared for each
// call): never call it on the request path.
func (e *Engine) Explain(ctx context.Context, query string, in Input, snap model.Snapshot) ([]*topdown.Event, error) {
	c := e.current.Load()
	if c == nil {
		return nil, fmt.Errorf("no policy loaded")
	}
	body, err := ast.ParseBody(query)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	store := inmem.NewFromObjectWithOpts(map[string]any{"mappings": mappingsData(snap)}, inmem.OptRoundTripOnWrite(false))
	buf := topdown.NewBufferTracer()
	_, err = rego.New(
		rego.ParsedQuery(body),
		rego.Compiler(c.compiler),
		rego.Store(store),
		rego.ParsedInput(inputValue(in)),
		rego.QueryTracer(buf),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", query, err)
	}
	return *buf, nil
}
