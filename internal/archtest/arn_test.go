package archtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/sidecar/awsprofile"
)

// The sidecar links nothing of core, so it checks role ARNs with its own
// grammar (awsprofile.IsRoleARN). These tests hold it to core/model.ParseRoleARN:
// the two must agree on every ARN, valid or hostile.

const acct = "123456789012"

func arn(resource string) string { return "arn:aws:iam::" + acct + ":" + resource }

// arnCorpus holds ARNs both must accept (valid) and both must refuse.
var arnCorpus = struct{ valid, hostile []string }{
	valid: []string{
		arn("role/a"),
		arn("role/acme-list-bucket-role"),
		"arn:aws-us-gov:iam::" + acct + ":role/Admin",
		"arn:aws-cn:iam::" + acct + ":role/x",
		arn("role/service-role/my+role=,.@_-"),
		arn("role/path/to/deep/role"),
		arn("role/" + strings.Repeat("n", 64)),
		arn("role/" + strings.Repeat("a", 510) + "/r"),  // path of 512
		arn("role/a:b/r"),                               // ':' is a path character
		arn("role/!\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}~/r"), // every printable path character
		arn("role/*/r"), arn("role/?/r"),                // wildcards are path characters for IAM
		arn("role/UPPER/CaseName"),
	},
	hostile: []string{
		"", "arn", "arn:", "arn:aws:iam::", arn(""), arn("role"), arn("role/"),
		arn("role/" + strings.Repeat("n", 65)),
		arn("role/" + strings.Repeat("a", 511) + "/r"), // path of 513
		arn("role/path/"), arn("role//r"), arn("role/a//r"), arn("role/ /r"),
		// wildcards in the name
		arn("role/*"), arn("role/a*"), arn("role/a?b"), arn("role/*/*"),
		// partitions and case
		"arn:aws-iso:iam::" + acct + ":role/a", "arn:AWS:iam::" + acct + ":role/a", "arn::iam::" + acct + ":role/a",
		"arn:*:iam::" + acct + ":role/a", "ARN:aws:iam::" + acct + ":role/a", "arn:aws:IAM::" + acct + ":role/a",
		arn("Role/a"), arn("ROLE/a"),
		// other services, regions, resources
		"arn:aws:sts::" + acct + ":assumed-role/a/session", "arn:aws:iam:us-east-1:" + acct + ":role/a",
		arn("user/a"), arn("role-a"), arn("rolea"), arn("role\\a"), arn("role/a:b"),
		// accounts
		"arn:aws:iam::12345678901:role/a", "arn:aws:iam::1234567890123:role/a", "arn:aws:iam::12345678901a:role/a",
		"arn:aws:iam::*:role/a", "arn:aws:iam:::role/a", "arn:aws:iam::" + acct + acct + ":role/a",
		"arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/a", // Arabic-Indic digits
		// whitespace and control characters
		" " + arn("role/a"), arn("role/a") + " ", arn("role/a") + "\n", arn("role/a") + "\r\n", "\n" + arn("role/a"),
		arn("role/a\nregion = us-east-1"), arn("role/a\x00"), arn("role/a\tb"), arn("role/a b"), arn("role/a\x7f"),
		// unicode
		arn("role/é"), arn("role/ａ"), arn("role/\u212a"), arn("role/a\u200b"), arn("role/ü/r"),
		"аrn:aws:iam::" + acct + ":role/a", // Cyrillic а
		arn("role/a\xff"), arn("role/\xc0\xaf"),
		// encodings and lengths
		"arn%3Aaws%3Aiam%3A%3A" + acct + "%3Arole%2Fa", arn("role/a%2Fb"),
		arn("role/" + strings.Repeat("p/", 2000) + "r"), strings.Repeat("arn:", 1000),
	},
}

// short quotes s for a message, cut to 120 bytes.
func short(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%q… (%d bytes)", s[:120], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func roleARNsAgree(t *testing.T, s string) (core, sidecar bool) {
	t.Helper()
	_, err := model.ParseRoleARN(s)
	core, sidecar = err == nil, awsprofile.IsRoleARN(s)
	if core != sidecar {
		t.Errorf("%s: core/model.ParseRoleARN accepts=%v, sidecar awsprofile.IsRoleARN accepts=%v", short(s), core, sidecar)
	}
	return core, sidecar
}

func TestRoleARNGrammarsAgree(t *testing.T) {
	for _, s := range arnCorpus.valid {
		if core, _ := roleARNsAgree(t, s); !core {
			t.Errorf("%s: want accepted", short(s))
		}
	}
	for _, s := range arnCorpus.hostile {
		if core, _ := roleARNsAgree(t, s); core {
			t.Errorf("%s: want refused", short(s))
		}
	}
	// Every length boundary of the name and of the path.
	for n := 0; n <= 66; n++ {
		roleARNsAgree(t, arn("role/"+strings.Repeat("n", n)))
	}
	for n := 505; n <= 520; n++ { // path "/" + segment + "/" of n characters
		roleARNsAgree(t, arn("role/"+strings.Repeat("s", n-2)+"/r"))
	}
	// Every byte, at every position of a valid ARN.
	base := arn("role/p/r")
	for i := 0; i <= len(base); i++ {
		for b := 0; b < 256; b++ {
			roleARNsAgree(t, base[:i]+string(rune(b))+base[i:])
			roleARNsAgree(t, base[:i]+string([]byte{byte(b)})+base[i:])
		}
	}
}

func FuzzRoleARNGrammarsAgree(f *testing.F) {
	for _, s := range append(arnCorpus.valid, arnCorpus.hostile...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { roleARNsAgree(t, s) })
}
