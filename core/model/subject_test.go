package trust

import "testing"

func TestParseSubject(t *testing.T) {
	tests := []struct {
		in      string
		want    ParsedSubject
		wantErr bool
	}{
		{in: "system:serviceaccount:domino-compute:run-65f1", want: ParsedSubject{"domino-compute", "run-65f1", false}},
		{in: "*:domino-compute:run-65f1", want: ParsedSubject{"domino-compute", "run-65f1", true}},
		{in: "system:serviceaccount:ns:a.b-c", want: ParsedSubject{"ns", "a.b-c", false}},
		{in: "system:serviceaccount:domino-compute:*", wantErr: true},
		{in: "system:serviceaccount:*:run-1", wantErr: true},
		{in: "system:serviceaccount:ns:run?", wantErr: true},
		{in: "*:*:*", wantErr: true},
		{in: "system:serviceaccount:ns", wantErr: true},
		{in: "system:serviceaccount:ns:sa:extra", wantErr: true},
		{in: "system:serviceaccount:NS:sa", wantErr: true},
		{in: "system:serviceaccount::sa", wantErr: true},
		{in: "system:serviceaccount:ns:", wantErr: true},
		{in: "system:serviceaccounts:ns:sa", wantErr: true},
		{in: "?:ns:sa", wantErr: true},
		{in: "", wantErr: true},
		{in: "system:serviceaccount:" + string(make([]byte, 64)) + ":sa", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSubject(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSubject(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil {
			if got != tt.want {
				t.Errorf("ParseSubject(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("round trip of %q gives %q", tt.in, got.String())
			}
		}
	}
}

func TestSubject(t *testing.T) {
	if got := Subject("domino-compute", "run-1", false); got != "system:serviceaccount:domino-compute:run-1" {
		t.Errorf("exact: %q", got)
	}
	if got := Subject("domino-compute", "run-1", true); got != "*:domino-compute:run-1" {
		t.Errorf("legacy: %q", got)
	}
}

func TestNormalizeProvider(t *testing.T) {
	for in, want := range map[string]string{
		"https://oidc.eks.us-west-2.amazonaws.com/id/ABC/": "oidc.eks.us-west-2.amazonaws.com/id/ABC",
		"oidc.eks.us-west-2.amazonaws.com/id/ABC":          "oidc.eks.us-west-2.amazonaws.com/id/ABC",
		"http://127.0.0.1:6000/dev/oidc":                   "127.0.0.1:6000/dev/oidc",
	} {
		if got := NormalizeProvider(in); got != want {
			t.Errorf("NormalizeProvider(%q) = %q, want %q", in, got, want)
		}
	}
}
