package devstack

import (
	"os"

	"github.com/irsa-broker/irsa-broker/plugins/static"
)

func readUsers(path string) (static.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return static.File{}, err
	}
	return static.Parse(b)
}
