package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// member is one name/value pair of a JSON object; raw is compact JSON and is
// never modified in place (edits replace it), so objects can share members.
type member struct {
	key string
	raw json.RawMessage
}

// object is a JSON object that keeps its members' order (and duplicates).
type object []member

func parseObject(raw []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{key: key, raw: compact(v)})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

// compact returns v without whitespace outside strings. v is valid JSON (the
// decoder checked it); most documents come compact from IAM, so the common
// case is a copy with no second scan.
func compact(v json.RawMessage) json.RawMessage {
	if bytes.IndexAny(v, " \t\r\n") < 0 {
		return bytes.Clone(v)
	}
	var c bytes.Buffer
	_ = json.Compact(&c, v) // cannot fail on valid JSON
	return c.Bytes()
}

// index returns the position of the first member named key (exactly, or
// case-insensitively with fold), or -1.
func (o object) index(key string, fold bool) int {
	for i, m := range o {
		if m.key == key || (fold && strings.EqualFold(m.key, key)) {
			return i
		}
	}
	return -1
}

func (o object) get(key string) (json.RawMessage, bool) {
	if i := o.index(key, false); i >= 0 {
		return o[i].raw, true
	}
	return nil, false
}

// with returns a copy of o with key set to raw (replaced in place if present,
// appended otherwise).
func (o object) with(key string, raw json.RawMessage, fold bool) object {
	c := append(object(nil), o...)
	if i := c.index(key, fold); i >= 0 {
		c[i].raw = raw
		return c
	}
	return append(c, member{key: key, raw: raw})
}

func (o object) appendTo(b *bytes.Buffer) {
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(encodeString(m.key))
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
}

func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	o.appendTo(&b)
	return b.Bytes()
}

// encodeString is JSON string encoding without HTML escaping (which would
// lengthen the document for no reason).
func encodeString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // cannot fail for a string
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func encodeStrings(ss []string) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(encodeString(s))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// stringOrList decodes a policy value that IAM accepts as a string or a
// list of strings.
func stringOrList(raw json.RawMessage) ([]string, error) {
	if string(raw) == "null" {
		return nil, errors.New("want a string or a list of strings, got null")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil || l == nil {
		return nil, fmt.Errorf("want a string or a list of strings, got %s", truncate(raw))
	}
	return l, nil
}

func truncate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
