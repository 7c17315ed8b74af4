package awsprofile

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

// ConfirmWithSDK loads the file at path (holding the text c was validated
// from) with the AWS SDK for Go v2's own shared-config loader and checks that
// the SDK sees exactly what Validate accepted: every profile with the same
// settings and nothing else, and no default profile unless the answer names
// one. It guards against the two parsers reading a line differently. A
// disagreement is a *RejectError.
func ConfirmWithSDK(ctx context.Context, path string, c Checked) error {
	only := func(o *config.LoadSharedConfigOptions) {
		o.ConfigFiles = []string{path}
		o.CredentialsFiles = []string{} // not the user's ~/.aws/credentials
	}
	named := map[string]bool{}
	for _, p := range c.Config.Profiles {
		named[p.Name] = true
		sc, err := config.LoadSharedConfigProfile(ctx, p.Name, only)
		if err != nil {
			return &RejectError{Profile: p.Name, Reason: "the AWS SDK does not load it: " + err.Error()}
		}
		if !sdkSees(sc, p) {
			return &RejectError{Profile: p.Name, Reason: "the AWS SDK reads it differently from the sidecar"}
		}
	}
	if !named["default"] {
		_, err := config.LoadSharedConfigProfile(ctx, "default", only)
		var missing config.SharedConfigProfileNotExistError
		if !errors.As(err, &missing) {
			return &RejectError{Profile: "default", Reason: "the AWS SDK finds a default profile the sidecar does not see"}
		}
	}
	return nil
}

// sdkSees reports whether the SDK's view of profile p holds p's settings and
// nothing else. The source profile is compared when it is loaded itself; here
// only its name must match.
func sdkSees(sc config.SharedConfig, p Profile) bool {
	s := p.Settings
	want := config.SharedConfig{
		Profile:              p.Name,
		RoleARN:              s[KeyRoleARN],
		SourceProfileName:    s[KeySourceProfile],
		WebIdentityTokenFile: s[KeyWebIdentityTokenFile],
		Region:               s[KeyRegion],
		RoleSessionName:      s[KeyRoleSessionName],
	}
	if v, ok := s[KeyDurationSeconds]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return false
		}
		d := time.Duration(n) * time.Second
		want.RoleDurationSeconds = &d
	}
	src := sc.Source
	sc.Source = nil
	if (src == nil) != (want.SourceProfileName == "") || src != nil && src.Profile != want.SourceProfileName {
		return false
	}
	return reflect.DeepEqual(sc, want)
}
