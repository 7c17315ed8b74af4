package model

import "testing"

func TestParseSubject(t *testing.T) {
	tests := []struct {
		in      string
		want    Subject
		wantErr bool
	}{
		{in: "system:serviceaccount:domino-compute:run-65f1", want: Subject{"domino-compute", "run-65f1", false}},
		{in: "*:domino-compute:run-65f1", want: Subject{"domino-compute", "run-65f1", true}},
		{in: "system:serviceaccount:ns:a.b-c", want: Subject{"ns", "a.b-c", false}},
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
	if got := (Subject{"domino-compute", "run-1", false}).String(); got != "system:serviceaccount:domino-compute:run-1" {
		t.Errorf("exact: %q", got)
	}
	if got := (Subject{"domino-compute", "run-1", true}).String(); got != "*:domino-compute:run-1" {
		t.Errorf("legacy: %q", got)
	}
}
