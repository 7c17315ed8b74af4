package awssim

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, doc string
		kind      policyKind
		wantErr   string // substring; "" = valid
	}{
		{"trust ok", trustAnyAWS, kindTrust, ""},
		{"single statement object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}`, kindTrust, ""},
		{"no version", `{"Statement":[{"Effect":"Deny","Principal":{"Federated":["a","b"]},"NotAction":"s3:*"}]}`, kindTrust, ""},
		{"condition scalars", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"n":5},"ForAnyValue:StringLike":{"k":["a*"]},"StringEqualsIfExists":{"x":"y"}}}]}`, kindTrust, ""},
		{"invalid json", `{"Version":`, kindTrust, "invalid Json"},
		{"trailing data", trustAnyAWS + `{}`, kindTrust, "invalid Json"},
		{"array top level", `[]`, kindTrust, "invalid Json"},
		{"bad version", `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"a"}]}`, kindTrust, "legacy parsing"},
		{"no statement", `{"Version":"2012-10-17"}`, kindTrust, "Syntax errors"},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, kindTrust, "Syntax errors"},
		{"unknown top-level field", `{"Version":"2012-10-17","Foo":1,"Statement":[{"Effect":"Allow","Principal":"*","Action":"a"}]}`, kindTrust, "Syntax errors"},
		{"unknown statement field", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"a","Bogus":1}]}`, kindTrust, "Syntax errors"},
		{"lowercase effect", `{"Statement":[{"Effect":"allow","Principal":"*","Action":"a"}]}`, kindTrust, "Invalid effect"},
		{"missing effect", `{"Statement":[{"Principal":"*","Action":"a"}]}`, kindTrust, "Effect"},
		{"missing action", `{"Statement":[{"Effect":"Allow","Principal":"*"}]}`, kindTrust, "Action"},
		{"missing principal", `{"Statement":[{"Effect":"Allow","Action":"a"}]}`, kindTrust, "Principal"},
		{"trust with resource", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"a","Resource":"*"}]}`, kindTrust, "Resource"},
		{"principal string not star", `{"Statement":[{"Effect":"Allow","Principal":"me","Action":"a"}]}`, kindTrust, "Invalid principal"},
		{"unknown principal type", `{"Statement":[{"Effect":"Allow","Principal":{"Foo":"x"},"Action":"a"}]}`, kindTrust, "Invalid principal"},
		{"action number", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":1}]}`, kindTrust, "Syntax errors"},
		{"unknown condition operator", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"a","Condition":{"StringSortOf":{"k":"v"}}}]}`, kindTrust, "Invalid Condition type"},
		{"bad set operator", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"a","Condition":{"ForSome:StringLike":{"k":"v"}}}]}`, kindTrust, "Invalid Condition type"},
		{"condition object value", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"a","Condition":{"StringLike":{"k":{"x":1}}}}]}`, kindTrust, "Syntax errors"},
		{"identity ok", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::1:role/*"}]}`, kindIdentity, ""},
		{"identity without resource", `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`, kindIdentity, "resources"},
		{"identity with principal", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`, kindIdentity, "principal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy(tc.doc, tc.kind)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.wantErr) {
				t.Fatalf("want PolicyError containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "a", true},
		{"a?c", "abc", true},
		{"a?c", "abbc", false},
		{"system:serviceaccount:*:run-*", "system:serviceaccount:domino-compute:run-1", true},
		{"*:domino-compute:run-1", "system:serviceaccount:domino-compute:run-1", true},
		{"*:domino-compute:run-1", "system:serviceaccount:domino-compute:run-12", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"**", "x", true},
		{"Run-1", "run-1", false}, // StringLike is case-sensitive
	}
	for _, tc := range tests {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestEvaluateConditions(t *testing.T) {
	const p = "oidc.example.com/id/X"
	doc := func(effect, cond string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"` + effect + `","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/` + p +
			`"},"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"],"Condition":` + cond + `}]}`
	}
	req := func(sub string, aud ...string) evalRequest {
		ctx := map[string][]string{p + ":sub": {sub}}
		if len(aud) > 0 {
			ctx[p+":aud"] = aud
		}
		return evalRequest{PrincipalType: "Federated", Principals: []string{"arn:aws:iam::1:oidc-provider/" + p},
			Action: "sts:AssumeRoleWithWebIdentity", Context: ctx}
	}
	tests := []struct {
		name string
		doc  string
		req  evalRequest
		want decision
	}{
		{"StringEquals hit", doc("Allow", `{"StringEquals":{"`+p+`:sub":"s1"}}`), req("s1"), decisionAllow},
		{"StringEquals list", doc("Allow", `{"StringEquals":{"`+p+`:sub":["s0","s1"]}}`), req("s1"), decisionAllow},
		{"StringEquals miss", doc("Allow", `{"StringEquals":{"`+p+`:sub":"s1"}}`), req("s2"), decisionNone},
		{"condition key is case-insensitive", doc("Allow", `{"StringEquals":{"`+strings.ToUpper(p)+`:SUB":"s1"}}`), req("s1"), decisionAllow},
		{"StringLike", doc("Allow", `{"StringLike":{"`+p+`:sub":"s*"}}`), req("s42"), decisionAllow},
		{"all keys must hold", doc("Allow", `{"StringEquals":{"`+p+`:sub":"s1","`+p+`:aud":"sts"}}`), req("s1", "other"), decisionNone},
		{"missing key fails positive op", doc("Allow", `{"StringEquals":{"`+p+`:aud":"sts"}}`), req("s1"), decisionNone},
		{"IfExists passes missing key", doc("Allow", `{"StringEqualsIfExists":{"`+p+`:aud":"sts"}}`), req("s1"), decisionAllow},
		{"ForAnyValue", doc("Allow", `{"ForAnyValue:StringEquals":{"`+p+`:aud":["x","sts"]}}`), req("s1", "sts"), decisionAllow},
		{"ForAnyValue missing key", doc("Allow", `{"ForAnyValue:StringLike":{"`+p+`:aud":"*"}}`), req("s1"), decisionNone},
		{"ForAllValues missing key", doc("Allow", `{"ForAllValues:StringLike":{"`+p+`:aud":"x"}}`), req("s1"), decisionAllow},
		{"ForAllValues one outside", doc("Allow", `{"ForAllValues:StringLike":{"`+p+`:aud":"a*"}}`), req("s1", "a1", "b1"), decisionNone},
		{"StringNotEquals", doc("Allow", `{"StringNotEquals":{"`+p+`:sub":"s1"}}`), req("s2"), decisionAllow},
		{"StringNotLike excludes", doc("Allow", `{"StringNotLike":{"`+p+`:sub":"s*"}}`), req("s2"), decisionNone},
		{"Null true", doc("Allow", `{"Null":{"`+p+`:aud":"true"}}`), req("s1"), decisionAllow},
		{"Null false", doc("Allow", `{"Null":{"`+p+`:aud":"true"}}`), req("s1", "a"), decisionNone},
		{"StringEqualsIgnoreCase", doc("Allow", `{"StringEqualsIgnoreCase":{"`+p+`:sub":"S1"}}`), req("s1"), decisionAllow},
		{"Deny", doc("Deny", `{"StringLike":{"`+p+`:sub":"*"}}`), req("s1"), decisionDeny},
		{"wrong provider", strings.Replace(doc("Allow", `{"StringLike":{"`+p+`:sub":"*"}}`), "oidc-provider/", "oidc-provider/other/", 1), req("s1"), decisionNone},
		{"NumericLessThan", doc("Allow", `{"NumericLessThan":{"`+p+`:sub":10}}`), req("9.5"), decisionAllow},
		{"DateGreaterThan", doc("Allow", `{"DateGreaterThan":{"`+p+`:sub":"2020-01-01T00:00:00Z"}}`), req("2021-01-01T00:00:00Z"), decisionAllow},
		{"IpAddress", doc("Allow", `{"IpAddress":{"`+p+`:sub":"10.0.0.0/8"}}`), req("10.1.2.3"), decisionAllow},
		{"NotIpAddress", doc("Allow", `{"NotIpAddress":{"`+p+`:sub":"10.0.0.0/8"}}`), req("10.1.2.3"), decisionNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := parsePolicy(tc.doc, kindTrust)
			if err != nil {
				t.Fatal(err)
			}
			if got := pol.evaluate(tc.req); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvaluateAWSPrincipalsAndResources(t *testing.T) {
	trust := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111111111111:root","222222222222"]},"Action":"sts:AssumeRole"},
		{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":"sts:TagSession"}]}`
	pol, err := parsePolicy(trust, kindTrust)
	if err != nil {
		t.Fatal(err)
	}
	as := func(acct string) evalRequest {
		return evalRequest{PrincipalType: "AWS", Principals: []string{"arn:aws:iam::" + acct + ":role/r", "arn:aws:iam::" + acct + ":root", acct}, Action: "sts:AssumeRole"}
	}
	for acct, want := range map[string]decision{"111111111111": decisionAllow, "222222222222": decisionAllow, "333333333333": decisionNone} {
		if got := pol.evaluate(as(acct)); got != want {
			t.Errorf("account %s: %v, want %v", acct, got, want)
		}
	}
	tag := as("333333333333")
	tag.Action = "STS:tagsession" // actions are case-insensitive
	if got := pol.evaluate(tag); got != decisionNone {
		t.Errorf("NotPrincipal: %v", got)
	}
	tag = as("444444444444")
	tag.Action = "sts:TagSession"
	if got := pol.evaluate(tag); got != decisionAllow {
		t.Errorf("NotPrincipal other: %v", got)
	}

	perm, err := parsePolicy(`{"Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"arn:aws:iam::*:role/asset-*"},{"Effect":"Deny","Action":"*","NotResource":"arn:aws:iam::*:role/asset-*"}]}`, kindIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if got := perm.evaluate(evalRequest{Action: "sts:AssumeRole", Resource: "arn:aws:iam::1:role/asset-x"}); got != decisionAllow {
		t.Errorf("resource wildcard: %v", got)
	}
	if got := perm.evaluate(evalRequest{Action: "sts:AssumeRole", Resource: "arn:aws:iam::1:role/Asset-x"}); got != decisionDeny {
		t.Errorf("resources are case-sensitive: %v", got)
	}
}

func TestPolicySize(t *testing.T) {
	if got := PolicySize("{ \"a\" :\n\t[ 1 ,\r\n 2 ] }"); got != len(`{"a":[1,2]}`) {
		t.Fatalf("PolicySize = %d", got)
	}
}

// wildcardRegexp is a reference implementation of IAM wildcards for the fuzzer.
func wildcardRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzPolicy checks the policy parser and condition matcher: no panics, deterministic
// results, Deny always wins, and the wildcard matcher agrees with a regexp reference.
func FuzzPolicy(f *testing.F) {
	f.Add(trustAnyAWS, "system:serviceaccount:ns:sa", "*:ns:s?")
	f.Add(webTrust("oidc.example.com/id/X", `{"StringLike":{"oidc.example.com/id/X:sub":["","system:serviceaccount:domino-compute:run-*"]}}`), "system:serviceaccount:domino-compute:run-1", "a*b?c")
	f.Add(`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"NotAction":"x","Condition":{"ForAllValues:StringNotLike":{"k":["*"]},"Null":{"z":"false"}}}}`, "", "")
	f.Add(`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":["x"]},"Action":["sts:*"],"Condition":{"NumericGreaterThanIfExists":{"n":1.5},"Bool":{"b":true}}}]}`, "1.6", "**?")
	f.Add(`{"Statement":[`, "x", "")
	f.Fuzz(func(t *testing.T, doc, value, pattern string) {
		if isASCII(pattern) && isASCII(value) && len(pattern) < 64 {
			if got, want := wildcardMatch(pattern, value), wildcardRegexp(pattern).MatchString(value); got != want {
				t.Fatalf("wildcardMatch(%q, %q) = %v, reference %v", pattern, value, got, want)
			}
		}
		pol, err := parsePolicy(doc, kindTrust)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("parse error is not a PolicyError: %v", err)
			}
			return
		}
		ctx := map[string][]string{"oidc.example.com/id/X:sub": {value}, "k": {value, pattern}, "n": {value}}
		req := evalRequest{PrincipalType: "Federated", Principals: []string{"x", value}, Action: "sts:AssumeRoleWithWebIdentity", Context: ctx}
		d1, d2 := pol.evaluate(req), pol.evaluate(req)
		if d1 != d2 {
			t.Fatalf("non-deterministic: %v then %v", d1, d2)
		}
		// An unconditional Deny added to any valid policy always wins.
		withDeny := *pol
		withDeny.Statements = append(append([]statement(nil), pol.Statements...), statement{Effect: "Deny", Principal: &principalSet{Any: true}, Action: []string{"*"}})
		if got := withDeny.evaluate(req); got != decisionDeny {
			t.Fatalf("explicit deny lost: %v", got)
		}
		// Parsing is deterministic.
		again, err := parsePolicy(doc, kindTrust)
		if err != nil || len(again.Statements) != len(pol.Statements) {
			t.Fatalf("reparse: %v", err)
		}
	})
}
