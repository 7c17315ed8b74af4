package model

import (
	"fmt"
	"regexp"
	"strings"
)

// RoleARN is a parsed IAM role ARN: arn:<partition>:iam::<account>:role<path><name>.
type RoleARN struct {
	Partition string // aws, aws-us-gov, aws-cn
	AccountID string // 12 digits
	Path      string // "/" or "/a/b/"
	Name      string
}

func (a RoleARN) String() string {
	return "arn:" + a.Partition + ":iam::" + a.AccountID + ":role" + a.Path + a.Name
}

var (
	accountRE  = regexp.MustCompile(`^[0-9]{12}$`)
	roleNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	// IAM path grammar: "/" or "/" followed by segments of printable ASCII
	// (except "/") each ending in "/", at most 512 characters.
	rolePathRE = regexp.MustCompile(`^/([\x21-\x2E\x30-\x7E]+/)*$`)
)

var partitions = map[string]bool{"aws": true, "aws-us-gov": true, "aws-cn": true}

// ParseRoleARN validates s as an IAM role ARN. The error says which part is wrong.
func ParseRoleARN(s string) (RoleARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: want arn:<partition>:iam::<account>:role/<name>", s)
	}
	if !partitions[parts[1]] {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: unknown partition %q", s, parts[1])
	}
	if parts[2] != "iam" || parts[3] != "" {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: not an IAM ARN", s)
	}
	if !accountRE.MatchString(parts[4]) {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: account must be 12 digits", s)
	}
	res, ok := strings.CutPrefix(parts[5], "role/")
	if !ok {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: resource must be role/<name>", s)
	}
	i := strings.LastIndex(res, "/")
	path, name := "/"+res[:i+1], res[i+1:]
	if len(path) > 512 || !rolePathRE.MatchString(path) {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: invalid path %q", s, path)
	}
	if !roleNameRE.MatchString(name) {
		return RoleARN{}, fmt.Errorf("invalid role ARN %q: invalid role name %q", s, name)
	}
	return RoleARN{Partition: parts[1], AccountID: parts[4], Path: path, Name: name}, nil
}
