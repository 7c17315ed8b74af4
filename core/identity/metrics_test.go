package identity

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// samples is a histogram's observation count.
func samples(o prometheus.Observer) uint64 {
	var d dto.Metric
	if err := o.(prometheus.Metric).Write(&d); err != nil {
		panic(err)
	}
	return d.Histogram.GetSampleCount()
}
