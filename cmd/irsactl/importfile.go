package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/model"
)

// Formats of a mappings file (export writes the first two; import reads all).
const (
	fileV2        = "v2"        // {"mappings":[{"org","role_pairs",["multi"]}]}: /v2's list shape
	fileConfigMap = "configmap" // the ConfigMap domino-org-iamrole-mapping (kubectl get -o yaml), or its data alone
	fileLegacyGET = "legacy"    // GET /role_mappings: {"all_role_mappings":{org: pair or [pairs]}}
)

// mappingsFileV2 is the /v2 export. Multi marks a single-pair org kept in
// the legacy list shape (written through update_multirole_mapping); /v2's own
// schema has no such flag, and a restore must not lose it.
type mappingsFileV2 struct {
	Mappings []mappingV2 `json:"mappings"`
	Revision string      `json:"revision,omitempty"`
}

type mappingV2 struct {
	Org       string           `json:"org"`
	RolePairs []model.RolePair `json:"role_pairs"`
	Multi     bool             `json:"multi,omitempty"`
}

func toV2(m model.Mapping) mappingV2 {
	return mappingV2{Org: m.Org, RolePairs: m.Pairs, Multi: m.Multi && len(m.Pairs) == 1}
}

// maxImportBytes bounds a mappings file (the ConfigMap limit is 1 MiB).
const maxImportBytes = 4 << 20

// parseMappingsFile reads a mappings file in any of the formats, JSON or
// YAML, and returns its mappings sorted by org, each validated as the broker
// would. Duplicate orgs are refused.
func parseMappingsFile(data []byte) ([]model.Mapping, string, error) {
	if len(data) > maxImportBytes {
		return nil, "", fmt.Errorf("the file is larger than %d bytes", maxImportBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, "", fmt.Errorf("the file is empty")
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, "", fmt.Errorf("neither JSON nor YAML: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, "", fmt.Errorf("want an object: /v2's {\"mappings\": [...]}, a ConfigMap, its data, or GET /role_mappings' answer")
	}
	var (
		out    []model.Mapping
		format string
	)
	switch {
	case top["kind"] == nil && bytes.HasPrefix(bytes.TrimSpace(top["mappings"]), []byte("[")):
		format = fileV2
		out, err = parseV2(top["mappings"])
	case top["kind"] != nil:
		format = fileConfigMap
		var kind string
		_ = json.Unmarshal(top["kind"], &kind)
		if kind != "ConfigMap" {
			return nil, "", fmt.Errorf("kind %q: want a ConfigMap", kind)
		}
		var data map[string]json.RawMessage
		if raw := top["data"]; raw != nil && string(raw) != "null" {
			if err := json.Unmarshal(raw, &data); err != nil {
				return nil, "", fmt.Errorf("ConfigMap data: want an object of org → JSON string")
			}
		}
		out, err = parseByOrg(data)
	case top["all_role_mappings"] != nil:
		format = fileLegacyGET
		var data map[string]json.RawMessage
		if err := json.Unmarshal(top["all_role_mappings"], &data); err != nil {
			return nil, "", fmt.Errorf("all_role_mappings: want an object of org → mapping")
		}
		out, err = parseByOrg(data)
	default:
		format = fileConfigMap
		out, err = parseByOrg(top)
	}
	if err != nil {
		return nil, format, err
	}
	slices.SortFunc(out, func(a, b model.Mapping) int { return strings.Compare(a.Org, b.Org) })
	for i := 1; i < len(out); i++ {
		if out[i].Org == out[i-1].Org {
			return nil, format, fmt.Errorf("org %q appears more than once", out[i].Org)
		}
	}
	return out, format, nil
}

func parseV2(raw json.RawMessage) ([]model.Mapping, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("mappings: want a list of {org, role_pairs}")
	}
	out := make([]model.Mapping, 0, len(items))
	for i, it := range items {
		var org string
		if err := json.Unmarshal(it["org"], &org); err != nil || org == "" {
			return nil, fmt.Errorf("mappings[%d]: org must be a non-empty string", i)
		}
		var multi bool
		if r := it["multi"]; r != nil {
			if err := json.Unmarshal(r, &multi); err != nil {
				return nil, fmt.Errorf("org %q: multi must be a boolean", org)
			}
		}
		pairs, ok := it["role_pairs"]
		if !ok {
			return nil, fmt.Errorf("org %q: role_pairs is required", org)
		}
		// role_pairs is the legacy list value; the legacy codec decodes it.
		m, err := mapping.ParseValue(org, string(pairs))
		if err != nil || !bytes.HasPrefix(bytes.TrimSpace(pairs), []byte("[")) {
			if err == nil {
				err = fmt.Errorf("role_pairs must be a list")
			}
			return nil, fmt.Errorf("org %q: %w", org, err)
		}
		m.Multi = multi || len(m.Pairs) != 1
		out = append(out, m)
	}
	return out, nil
}

// parseByOrg reads {org: value}, where a value is the ConfigMap's JSON
// string or the mapping itself (an object, or a list for multi-role orgs).
func parseByOrg(data map[string]json.RawMessage) ([]model.Mapping, error) {
	out := make([]model.Mapping, 0, len(data))
	for org, raw := range data {
		value := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			value = s
		}
		m, err := mapping.ParseValue(org, value)
		if err != nil {
			return nil, fmt.Errorf("org %q: %w", org, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// configMapFile renders mappings as the ConfigMap the broker and v1.8 read,
// ready for `kubectl apply -f`.
func configMapFile(ms []model.Mapping) ([]byte, error) {
	data := make(map[string]string, len(ms))
	for _, m := range ms {
		data[m.Org] = mapping.Value(m)
	}
	return yaml.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   map[string]any{"name": "domino-org-iamrole-mapping", "namespace": "domino-field"},
		"data":       data,
	})
}
