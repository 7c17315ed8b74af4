package model

import (
	"bytes"
	"encoding/json"
	"strings"
)

// DecodePair decodes one legacy pair object, e.g. a request body of
// update_role_mapping or an element of role_data. Both ARNs must be JSON
// strings holding valid role ARNs; update_iam_role_trust_policy may be a JSON
// bool or the string "true"/"false" in any case, and is true when missing or
// null. Unknown fields are ignored. Errors are *ValidationError.
//
// proxy_pool, optional, makes the proxy side a pool (DecodePool); its first
// member is the pair's proxy_iam_role_arn, which may then be left out.
func DecodePair(raw json.RawMessage) (RolePair, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return RolePair{}, &ValidationError{Field: "mapping", Message: "want a JSON object with iam_role_arn and proxy_iam_role_arn"}
	}
	var p RolePair
	var err error
	if p.IAMRoleARN, err = stringField(fields, "iam_role_arn"); err != nil {
		return RolePair{}, err
	}
	if pool, ok := fields["proxy_pool"]; ok && string(bytes.TrimSpace(pool)) != "null" {
		if p.ProxyPool, err = DecodePool(pool); err != nil {
			return RolePair{}, err
		}
		if _, ok := fields["proxy_iam_role_arn"]; !ok && len(p.ProxyPool.Members) > 0 {
			fields["proxy_iam_role_arn"], _ = json.Marshal(p.ProxyPool.Members[0])
		}
	}
	if p.ProxyIAMRoleARN, err = stringField(fields, "proxy_iam_role_arn"); err != nil {
		return RolePair{}, err
	}
	if p.UpdateTrustPolicy, err = ParseFlag(fields["update_iam_role_trust_policy"]); err != nil {
		return RolePair{}, err
	}
	if err := p.Validate(); err != nil {
		return RolePair{}, err
	}
	return p, nil
}

func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return "", &ValidationError{Field: name, Message: "is required"}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &ValidationError{Field: name, Message: "must be a string"}
	}
	return s, nil
}

// ParseFlag decodes update_iam_role_trust_policy: a JSON bool, or a JSON
// string "true"/"false" in any case; empty (absent) or null means true.
func ParseFlag(raw json.RawMessage) (bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return true, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, &ValidationError{Field: "update_iam_role_trust_policy", Message: `must be true, false, "true" or "false"`}
}

// DecodePool decodes a proxy_pool object: {"name", "members": [ARN, ...],
// "elastic": {"template_role_arn", "path", "permissions_boundary_arn",
// "max_members", "empty_grace_seconds"}}. Unlike a pair's, its unknown
// fields are refused: the object is new, and a misspelt field would silently
// change how subjects are placed. It is validated with its pair.
func DecodePool(raw json.RawMessage) (*ProxyPool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var pp ProxyPool
	if err := dec.Decode(&pp); err != nil {
		return nil, &ValidationError{Field: "proxy_pool", Message: "want {\"name\", \"members\": [role ARN, ...], \"elastic\": {...}}: " + err.Error()}
	}
	if dec.More() {
		return nil, &ValidationError{Field: "proxy_pool", Message: "trailing data after the object"}
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, &ValidationError{Field: "proxy_pool", Message: "must be an object"}
	}
	return &pp, nil
}
