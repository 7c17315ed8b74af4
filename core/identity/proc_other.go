//go:build !linux

package identity

import "os/exec"

// dieWithParent has no equivalent here; the SDK's parent check ends orphans.
func dieWithParent(*exec.Cmd) {}
