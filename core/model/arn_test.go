package model

import "testing"

func TestParseRoleARN(t *testing.T) {
	tests := []struct {
		in   string
		want RoleARN
		err  bool
	}{
		{in: "arn:aws:iam::946429944765:role/acme-list-bucket-role", want: RoleARN{"aws", "946429944765", "/", "acme-list-bucket-role"}},
		{in: "arn:aws-us-gov:iam::946429944765:role/team/ds/proxy+x=y,z.w@v-1", want: RoleARN{"aws-us-gov", "946429944765", "/team/ds/", "proxy+x=y,z.w@v-1"}},
		{in: "arn:aws-cn:iam::000000000000:role/a", want: RoleARN{"aws-cn", "000000000000", "/", "a"}},
		{in: "arn:aws:iam::946429944765:user/bob", err: true},
		{in: "arn:aws:sts::946429944765:role/x", err: true},
		{in: "arn:aws:iam:us-east-1:946429944765:role/x", err: true},
		{in: "arn:aws:iam::94642994476:role/x", err: true},
		{in: "arn:aws:iam::946429944765:role/", err: true},
		{in: "arn:aws:iam::946429944765:role/a*", err: true},
		{in: "arn:aws:iam::946429944765:role/a b", err: true},
		{in: "arn:aws:iam::946429944765:role//x", err: true},
		{in: "arn:other:iam::946429944765:role/x", err: true},
		{in: "arn:aws:iam::946429944765:role/" + string(make([]byte, 65)), err: true},
		{in: "role/x", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := ParseRoleARN(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseRoleARN(%q) error %v, want error=%v", tt.in, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRoleARN(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}
