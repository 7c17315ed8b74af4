package podinfo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// ErrNoRunID means neither label that carries the run id is present.
var ErrNoRunID = errors.New("no run id: neither label " + brokerapi.LabelExecutionID + " nor " + brokerapi.LabelAppName + " (" + brokerapi.RunPrefix + "<id>) is set")

// SyntaxError is a malformed line of the labels file.
type SyntaxError struct {
	Line   int
	Reason string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("labels file line %d: %s", e.Line, e.Reason)
}

// InvalidError is a label whose value the broker would reject.
type InvalidError struct {
	Label, Value, Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("label %s=%q: %s", e.Label, e.Value, e.Reason)
}

// Info is what the broker needs to know about this pod.
type Info struct {
	RunID        string `json:"run_id"`
	WorkloadType string `json:"workload_type,omitempty"`
}

// Parse reads the downward-API format: one `key="value"` per line, the value
// quoted and escaped as Go's %q does (which is what the kubelet writes), lines
// separated by '\n', the last one usually without a newline. Blank lines are
// ignored; anything else that does not fit is a *SyntaxError.
func Parse(data []byte) (map[string]string, error) {
	labels := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, &SyntaxError{Line: n, Reason: `expected key="value"`}
		}
		if key == "" || strings.ContainsAny(key, " \t\"") {
			return nil, &SyntaxError{Line: n, Reason: fmt.Sprintf("invalid key %q", key)}
		}
		if len(raw) < 2 || raw[0] != '"' {
			return nil, &SyntaxError{Line: n, Reason: fmt.Sprintf("value of %s is not a quoted string", key)}
		}
		val, err := strconv.Unquote(raw)
		if err != nil {
			return nil, &SyntaxError{Line: n, Reason: fmt.Sprintf("value of %s is not a valid quoted string", key)}
		}
		if _, dup := labels[key]; dup {
			return nil, &SyntaxError{Line: n, Reason: fmt.Sprintf("duplicate key %s", key)}
		}
		labels[key] = val
	}
	return labels, nil
}

// FromLabels extracts the run id (brokerapi.LabelExecutionID, else
// brokerapi.LabelAppName without its brokerapi.RunPrefix) and the workload
// type, and validates both with the broker's own grammar.
func FromLabels(labels map[string]string) (Info, error) {
	var info Info
	label := brokerapi.LabelExecutionID
	id, ok := labels[brokerapi.LabelExecutionID]
	if !ok || id == "" {
		name, ok := labels[brokerapi.LabelAppName]
		if !ok || !strings.HasPrefix(name, brokerapi.RunPrefix) {
			return Info{}, ErrNoRunID
		}
		label, id = brokerapi.LabelAppName, strings.TrimPrefix(name, brokerapi.RunPrefix)
	}
	if brokerapi.ValidateRunID(id) != nil {
		return Info{}, &InvalidError{Label: label, Value: id,
			Reason: fmt.Sprintf("run id must be lowercase letters, digits and '-', at most %d characters, starting and ending with a letter or digit", brokerapi.MaxRunIDLength)}
	}
	info.RunID = id
	if t := labels[brokerapi.LabelWorkloadType]; t != "" {
		if brokerapi.ValidateWorkloadType(t) != nil {
			return Info{}, &InvalidError{Label: brokerapi.LabelWorkloadType, Value: t,
				Reason: "must be one of " + strings.Join(brokerapi.WorkloadTypes, ", ")}
		}
		info.WorkloadType = t
	}
	return info, nil
}

// Load reads and interprets the labels file at path.
func Load(ctx context.Context, path string) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Info{}, fmt.Errorf("read pod labels: %w", err)
	}
	labels, err := Parse(data)
	if err != nil {
		return Info{}, fmt.Errorf("parse pod labels %s: %w", path, err)
	}
	info, err := FromLabels(labels)
	if err != nil {
		return Info{}, fmt.Errorf("pod labels %s: %w", path, err)
	}
	return info, nil
}
