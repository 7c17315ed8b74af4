package identity

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks Linux to kill the child when the broker dies, even by
// SIGKILL; see startOnLockedThread for the thread caveat.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
