package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/model"
)

// TestConfigMapStoreBatchRevision: mapping batches against the real API
// server's optimistic concurrency. A batch at a revision another store has
// since written is refused and writes nothing; batches racing plain puts
// (two clients, as two replicas) lose nothing when retried from a fresh read.
func TestConfigMapStoreBatchRevision(t *testing.T) {
	ctx := context.Background()
	var stores []*mapping.ConfigMapStore
	for range 2 {
		cs, err := env.cp.Clientset(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, mapping.NewConfigMapStore(cs, fieldNS, "batch-mapping", nil))
	}
	putter, batcher := stores[0], stores[1]
	m := func(org string) model.Mapping {
		return model.Mapping{Org: org, Pairs: []model.RolePair{{IAMRoleARN: env.assetARNs[0], ProxyIAMRoleARN: env.roleARNs[0], UpdateTrustPolicy: true}}}
	}
	if err := putter.Put(ctx, m("seed")); err != nil {
		t.Fatal(err)
	}
	snap, err := batcher.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another replica writes after the batcher read.
	if err := putter.Put(ctx, m("between")); err != nil {
		t.Fatal(err)
	}
	_, err = batcher.Apply(ctx, model.Batch{Put: []model.Mapping{m("stale")}, Delete: []string{"seed"}, IfRevision: snap.Revision})
	if k, code, _ := model.Classify(err); k != model.KindPrecondition || code != "revision_mismatch" {
		t.Fatalf("batch at revision %s after another write: %v, want a stale revision", snap.Revision, err)
	}
	after, err := putter.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Mappings["stale"]; ok || after.Mappings["seed"].Org == "" || after.Mappings["between"].Org == "" {
		t.Fatalf("after the refused batch: %v", after.Mappings)
	}

	// Race: plain puts against conditional batches that retry from a fresh read.
	const rounds = 20
	var (
		wg        sync.WaitGroup
		stale     int
		putErr    error
		batchErrs []error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			if err := putter.Put(ctx, m(fmt.Sprintf("put-%02d", i))); err != nil {
				putErr = err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range rounds {
			b := model.Batch{Put: []model.Mapping{m(fmt.Sprintf("batch-%02d-a", i)), m(fmt.Sprintf("batch-%02d-b", i))}}
			if i > 0 {
				b.Delete = []string{fmt.Sprintf("batch-%02d-b", i-1)}
			}
			for {
				snap, err := batcher.Snapshot(ctx)
				if err != nil {
					batchErrs = append(batchErrs, err)
					return
				}
				b.IfRevision = snap.Revision
				_, err = batcher.Apply(ctx, b)
				if k, _, _ := model.Classify(err); k == model.KindPrecondition {
					stale++
					continue
				}
				if err != nil {
					batchErrs = append(batchErrs, err)
					return
				}
				break
			}
		}
	}()
	wg.Wait()
	if putErr != nil || len(batchErrs) > 0 {
		t.Fatalf("put: %v; batches: %v", putErr, batchErrs)
	}
	final, err := putter.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rounds {
		for org, want := range map[string]bool{
			fmt.Sprintf("put-%02d", i):     true,
			fmt.Sprintf("batch-%02d-a", i): true,
			fmt.Sprintf("batch-%02d-b", i): i == rounds-1,
		} {
			if _, ok := final.Mappings[org]; ok != want {
				t.Errorf("%s present=%v, want %v", org, ok, want)
			}
		}
	}
	t.Logf("%d batches retried after a stale revision", stale)
}
