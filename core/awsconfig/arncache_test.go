package awsconfig

import (
	"fmt"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// TestARNCacheAgreesWithParseRoleARN: the memoized parse answers exactly
// what model.ParseRoleARN answers, the first time and from the cache, for
// valid and invalid ARNs; invalid ones are never kept; past the bound
// nothing more is kept and answers stay right.
func TestARNCacheAgreesWithParseRoleARN(t *testing.T) {
	var c arnCache
	arns := []string{
		"arn:aws:iam::946429944765:role/acme-list-bucket-role",
		"arn:aws-cn:iam::946429944765:role/irsa-pools/update/update-001",
		"arn:aws:iam::946429944765:role/",
		"arn:aws:iam::94642994476:role/short-account",
		"arn:aws:s3:::bucket",
		"arn:aws:iam::946429944765:role/a b",
		"",
	}
	for range 2 {
		for _, s := range arns {
			want, wantErr := model.ParseRoleARN(s)
			got, err := c.parse(s)
			if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("parse(%q) = %+v, %v; want %+v, %v", s, got, err, want, wantErr)
			}
		}
	}
	if n := c.n.Load(); n != 2 {
		t.Errorf("%d ARNs kept, want the 2 valid ones", n)
	}

	c.n.Store(maxCachedARNs)
	extra := "arn:aws:iam::946429944765:role/past-the-bound"
	for range 2 {
		if a, err := c.parse(extra); err != nil || a.Name != "past-the-bound" {
			t.Fatalf("past the bound: %+v, %v", a, err)
		}
	}
	if _, ok := c.m.Load(extra); ok {
		t.Error("an ARN past the bound was kept")
	}
}

func BenchmarkRenderTwoPairs(b *testing.B) {
	pairs := []model.RolePair{
		{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-list-bucket-role", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/acme-list-bucket-role"},
		{IAMRoleARN: "arn:aws:iam::524112250363:role/acme-read-bucket-role", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/acme-read-bucket-role"},
	}
	for range b.N {
		if _, err := Render(pairs, Options{Region: "us-east-1", RoleSessionName: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
}
