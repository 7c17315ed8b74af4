package mapping

import (
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
)

// parsedCache keeps the mappings parsed from one revision of a store's raw
// values, so a snapshot of an unchanged store parses nothing.
type parsedCache struct {
	mu  sync.Mutex
	rev string
	m   map[string]model.Mapping
}

// snapshot returns the mappings of raw (org → legacy value) at revision rev,
// parsing only when rev changed ("" never caches). Invalid values, and the
// mappings whose pools conflict (model.PoolConflicts), are logged and left out.
func (c *parsedCache) snapshot(rev string, raw map[string]string, log hclog.Logger) model.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev == "" || rev != c.rev || c.m == nil {
		c.m = make(map[string]model.Mapping, len(raw))
		for org, v := range raw {
			m, err := ParseValue(org, v)
			if err != nil {
				log.Warn("skipping invalid mapping", "org", org, "error", err)
				continue
			}
			c.m[org] = m
		}
		// Two mappings whose pools could take each other's roles are both
		// left out: which one was meant cannot be told.
		for _, pc := range model.DropPoolConflicts(c.m) {
			log.Error("skipping conflicting mappings: their proxy pools could take each other's roles", "orgs", pc.Orgs[:], "field", pc.Field, "error", pc.Message)
		}
		c.rev = rev
	}
	return model.Snapshot{Revision: rev, Mappings: cloneAll(c.m)}
}
