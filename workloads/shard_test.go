package workloads

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// The shards of a KV drive every key exactly once between them, and each
// writes values no other shard writes (its index mod the count).
func TestKVShardKeys(t *testing.T) {
	const count = 3
	var all []string
	for i := range count {
		kv, err := NewKV(KVConfig{Keys: 8, Put: 1, CAS: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.ShardKeys(i, count); err != nil {
			t.Fatal(err)
		}
		keys := kv.Keys()
		all = append(all, keys...)
		r := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			op := kv.Next(r, 0)
			if !slices.Contains(keys, op.Key) {
				t.Fatalf("shard %d sent %s, not one of its keys %v", i, op.Key, keys)
			}
			v := string(op.Value)
			if op.F == FCAS {
				v = v[strings.LastIndex(v, ":")+1 : len(v)-1]
			}
			n, err := strconv.Atoi(v)
			if err != nil || n%count != i {
				t.Fatalf("shard %d wrote %s (%v): want values ≡ %d mod %d", i, op.Value, err, i, count)
			}
			kv.Observe(op, history.Outcome{Type: history.OK})
		}
		if err := kv.ShardKeys(i, count); err == nil {
			t.Error("sharding twice is not refused")
		}
	}
	slices.Sort(all)
	want := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	if !slices.Equal(all, want) {
		t.Errorf("the shards drive %v, want each of %v once", all, want)
	}
	kv, _ := NewKV(KVConfig{Keys: 2})
	if err := kv.ShardKeys(0, 3); err == nil || !strings.Contains(err.Error(), "at least 3 keys") {
		t.Errorf("2 keys over 3 shards: %v", err)
	}
}
