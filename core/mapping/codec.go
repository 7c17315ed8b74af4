package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// Legacy value codec. The existing service stores each org's mapping in the
// ConfigMap as a JSON string: an object for a single pair, a list of objects
// for an org written through update_multirole_mapping. The flag
// update_iam_role_trust_policy has been seen as a JSON bool and as the strings
// "true"/"false"; when it is missing it means true.
//
// A pair whose proxy side is a pool of roles carries one more field,
// "proxy_pool" (docs/design/pools.md):
//
//	{"iam_role_arn": "...:role/asset", "proxy_iam_role_arn": "...:role/proxy-1",
//	 "update_iam_role_trust_policy": true,
//	 "proxy_pool": {"name": "acme", "members": ["...:role/proxy-1", "...:role/proxy-2"],
//	                "elastic": {"template_role_arn": "...", "path": "/irsa-pools/acme/",
//	                            "permissions_boundary_arn": "...:policy/irsa-pool-boundary",
//	                            "max_members": 50, "empty_grace_seconds": 3600}}}
//
// proxy_iam_role_arn is always the first member, so a reader that knows no
// pools sees a valid single pair. Values of single proxy roles are unchanged.

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
		b.WriteString("true")
	} else {
		b.WriteString("false")
	}
	if p.ProxyPool != nil {
		b.WriteString(`, "proxy_pool": `)
		writePool(b, p.ProxyPool)
	}
	b.WriteByte('}')
}

// writePool writes a proxy pool in the same style. A single proxy role has
// none, so its value is byte for byte what the existing service wrote; the
// pool's first member is also proxy_iam_role_arn, so an old reader of a
// pool's value sees a valid pair (with one proxy role, the first member).
func writePool(b *strings.Builder, pp *model.ProxyPool) {
	b.WriteByte('{')
	if pp.Name != "" {
		b.WriteString(`"name": `)
		b.Write(jsonString(pp.Name))
		b.WriteString(", ")
	}
	b.WriteString(`"members": [`)
	for i, m := range pp.Members {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(jsonString(m))
	}
	b.WriteByte(']')
	if e := pp.Elastic; e != nil {
		b.WriteString(`, "elastic": {"template_role_arn": `)
		b.Write(jsonString(e.TemplateRoleARN))
		b.WriteString(`, "path": `)
		b.Write(jsonString(e.Path))
		b.WriteString(`, "permissions_boundary_arn": `)
		b.Write(jsonString(e.PermissionsBoundaryARN))
		if e.MaxMembers != 0 {
			b.WriteString(`, "max_members": ` + strconv.Itoa(e.MaxMembers))
		}
		if e.EmptyGraceSeconds != 0 {
			b.WriteString(`, "empty_grace_seconds": ` + strconv.Itoa(e.EmptyGraceSeconds))
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
}

func jsonString(s string) []byte {
	out, _ := json.Marshal(s) // a string always marshals
	return out
}
