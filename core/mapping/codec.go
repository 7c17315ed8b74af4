package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// Legacy value codec. The existing service stores each org's mapping in the
// ConfigMap as a JSON string: an object for a single pair, a list of objects
// for an org written through update_multirole_mapping. The flag
// update_iam_role_trust_policy has been seen as a JSON bool and as the strings
// "true"/"false"; when it is missing it means true.

// ParseValue decodes a stored legacy value (object or list of objects) for org
// and validates the result. A list yields Multi=true, even with one element.
// Errors are *ValidationError.
func ParseValue(org, value string) (model.Mapping, error) {
	m := model.Mapping{Org: org}
	raw := bytes.TrimSpace([]byte(value))
	switch {
	case len(raw) == 0:
		return model.Mapping{}, &model.ValidationError{Field: "mapping", Message: "empty value"}
	case raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return model.Mapping{}, &model.ValidationError{Field: "mapping", Message: "invalid JSON list: " + err.Error()}
		}
		m.Multi = true
		for i, item := range items {
			p, err := model.DecodePair(item)
			if err != nil {
				return model.Mapping{}, pairErr(i, err)
			}
			m.Pairs = append(m.Pairs, p)
		}
	case raw[0] == '{':
		p, err := model.DecodePair(raw)
		if err != nil {
			return model.Mapping{}, err
		}
		m.Pairs = []model.RolePair{p}
	default:
		return model.Mapping{}, &model.ValidationError{Field: "mapping", Message: "want a JSON object or a JSON list of objects"}
	}
	if err := m.Validate(); err != nil {
		return model.Mapping{}, err
	}
	return m, nil
}

func pairErr(i int, err error) error {
	if ve, ok := err.(*model.ValidationError); ok {
		return &model.ValidationError{Field: ve.Field, Message: fmt.Sprintf("role pair %d: %s", i+1, ve.Message)}
	}
	return err
}

// Value encodes m as the legacy stored value: an object for a single pair
// (Multi=false), else a list. The text is formatted like Python's json.dumps
// (", " and ": " separators, fields in the legacy order), so values written by
// the broker look like the ones the existing service wrote.
func Value(m model.Mapping) string {
	var b strings.Builder
	if !m.Multi && len(m.Pairs) == 1 {
		writePair(&b, m.Pairs[0])
		return b.String()
	}
	b.WriteByte('[')
	for i, p := range m.Pairs {
		if i > 0 {
			b.WriteString(", ")
		}
		writePair(&b, p)
	}
	b.WriteByte(']')
	return b.String()
}

func writePair(b *strings.Builder, p model.RolePair) {
	b.WriteString(`{"iam_role_arn": `)
	b.Write(jsonString(p.IAMRoleARN))
	b.WriteString(`, "proxy_iam_role_arn": `)
	b.Write(jsonString(p.ProxyIAMRoleARN))
	b.WriteString(`, "update_iam_role_trust_policy": `)
	if p.UpdateTrustPolicy {
		b.WriteString("true}")
	} else {
		b.WriteString("false}")
	}
}

func jsonString(s string) []byte {
	out, _ := json.Marshal(s) // a string always marshals
	return out
}
