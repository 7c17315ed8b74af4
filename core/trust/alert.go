package trust

import "sync"

// AlertRatio is the fill (size over quota, for a pool over its capacity) at
// which a role or a pool is reported once, until it drops below
// AlertRatio-AlertHysteresis again.
const (
	AlertRatio      = 0.8
	AlertHysteresis = 0.1
)

// FillAlert is told when a role ("role", its ARN) or a pool ("pool", its
// name) passes AlertRatio. It must not block (core/kube logs and emits an
// Event).
type FillAlert func(kind, name string, ratio float64)

// alarm calls a FillAlert once per upward crossing of AlertRatio per name.
type alarm struct {
	kind string
	fn   FillAlert
	mu   sync.Mutex
	high map[string]bool
}

func newAlarm(kind string, fn FillAlert) *alarm {
	return &alarm{kind: kind, fn: fn, high: map[string]bool{}}
}

func (a *alarm) observe(name string, ratio float64) {
	if a == nil || a.fn == nil {
		return
	}
	a.mu.Lock()
	fire := false
	switch {
	case ratio >= AlertRatio && !a.high[name]:
		a.high[name], fire = true, true
	case ratio < AlertRatio-AlertHysteresis && a.high[name]:
		delete(a.high, name)
	}
	a.mu.Unlock()
	if fire {
		a.fn(a.kind, name, ratio)
	}
}
