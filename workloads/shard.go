package workloads

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
)

// KeySharder is implemented by workload instances whose keys can be split
// among the generators of a sharded run (faultline run --shard I/N), so
// that each key is driven by exactly one of them: per-key checkers then
// judge the union of the shards' histories with no clock shared across
// machines. The register workload implements it.
type KeySharder interface {
	// ShardKeys keeps the instance to the keys of shard index of count
	// (0 <= index < count) and makes the values it writes unique across
	// the shards too. It is called once, before the first Next, and
	// returns an error (naming the parameter to change) when some shard
	// would get no key.
	ShardKeys(index, count int) error
}

// ShardKeys keeps the KV to the keys of shard index of count: key k<j>
// belongs to shard j mod count, so every shard keeps its keys' names (k1,
// k3, ... on shard 1 of 2) and the shards together drive every key once.
// Written values become count·n + index (n = 1, 2, ...), unique across the
// shards, and a value's shard is its remainder mod count. With count 1 it
// changes nothing. It must be called before the KV is used, not
// concurrently with anything else.
func (g *KV) ShardKeys(index, count int) error {
	if count < 1 || index < 0 || index >= count {
		return fmt.Errorf("workloads: shard %d/%d: want 0 <= index < count", index, count)
	}
	if g.stride != 0 {
		return fmt.Errorf("workloads: the keys are already split among %d shards", g.stride)
	}
	total := len(g.index) // every key: not sharded yet
	if total < count {
		return fmt.Errorf("workloads: %d keys cannot be split among %d shards (each shard drives keys of its own): give the workload at least %d keys", total, count, count)
	}
	var keys []string
	for j := index; j < total; j += count {
		keys = append(keys, "k"+strconv.Itoa(j))
	}
	g.keys = keys
	g.index = make(map[string]int, len(keys))
	for i, k := range keys {
		g.index[k] = i
	}
	g.last = make([]atomic.Pointer[json.RawMessage], len(keys))
	g.stride, g.offset = int64(count), int64(index)
	return nil
}
