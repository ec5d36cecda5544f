package lwwkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The peer protocol (HTTP/JSON on NodeConfig.PeerListen; every request
// carries the run's token when the node has one).
const (
	// PathReplicate takes a batch of versions and merges each:
	// {"from": ID, "versions": [{"key", "value", "clock", "ts", "origin", "seq"}]}
	// -> 200 {"merged": N} (N: how many changed the receiver's state).
	PathReplicate = "/lww/replicate"
	// PathSync is one anti-entropy exchange: {"from": ID, "digest": [...]},
	// the sender's versions without their values -> 200 {"versions": [...],
	// "want": [KEY...]}: the receiver's versions the sender lacks, and the
	// keys whose versions the receiver wants (the sender pushes them with
	// PathReplicate).
	PathSync = "/lww/sync"
)

// maxPeerBody bounds a peer request or answer, in bytes.
const maxPeerBody = 16 << 20

// maxBatchBytes bounds the versions of one batch or sync answer (estimated
// size); a single larger version still goes alone.
const maxBatchBytes = 4 << 20

// maxBatch bounds the versions of one replication batch.
const maxBatch = 512

// keyed is a version with its key, as the peer protocol carries it.
type keyed struct {
	Key string `json:"key"`
	version
}

// size estimates the bytes keyed takes in JSON.
func (k *keyed) size() int { return len(k.Key) + len(k.Value) + 80 + 24*len(k.Clock) }

type replicateReq struct {
	From     string  `json:"from"`
	Versions []keyed `json:"versions"`
}

type replicateResp struct {
	Merged int `json:"merged"`
}

type syncReq struct {
	From   string  `json:"from"`
	Digest []keyed `json:"digest"` // values left out
}

type syncResp struct {
	Versions []keyed  `json:"versions"`
	Want     []string `json:"want"`
}

// peer is one other node: the address this node dials for it, its
// replication queue, and whether it was reachable at the last try.
type peer struct {
	id, addr string

	mu      sync.Mutex
	pending map[string]version // the latest version of each key written here and not yet sent
	order   []string           // pending's keys, oldest first
	wake    chan struct{}      // cap 1: something was enqueued
	down    bool               // the last request to it failed
	fails   int64              // failed requests since it was last reachable
}

func newPeer(id, addr string) *peer {
	return &peer{id: id, addr: addr, pending: map[string]version{}, wake: make(chan struct{}, 1)}
}

// enqueue queues v as key's version to send, replacing a version of key
// not yet sent (v is the later one: the store calls it in write order).
func (p *peer) enqueue(key string, v version) {
	p.mu.Lock()
	if _, ok := p.pending[key]; !ok {
		p.order = append(p.order, key)
	}
	p.pending[key] = v
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// batch returns the oldest pending versions, at most maxBatch of them and
// about maxBatchBytes (at least one).
func (p *peer) batch() []keyed {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []keyed
	bytes := 0
	for _, k := range p.order {
		kv := keyed{Key: k, version: p.pending[k]}
		if len(out) > 0 && (len(out) == maxBatch || bytes+kv.size() > maxBatchBytes) {
			break
		}
		out = append(out, kv)
		bytes += kv.size()
	}
	return out
}

// sent removes the versions of a delivered batch that are still the
// pending ones (a key written again since stays queued).
func (p *peer) sent(b []keyed) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range b {
		if v, ok := p.pending[b[i].Key]; ok && same(&v, &b[i].version) {
			delete(p.pending, b[i].Key)
		}
	}
	p.order = slices.DeleteFunc(p.order, func(k string) bool { _, ok := p.pending[k]; return !ok })
}

// result records the outcome of a request to the peer and logs the
// changes between reachable and not.
func (n *node) result(p *peer, what string, err error) {
	p.mu.Lock()
	wasDown, fails := p.down, p.fails
	if err != nil {
		p.down = true
		p.fails++
	} else {
		p.down, p.fails = false, 0
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		n.counters.peerErrors.Add(1)
		if !wasDown {
			n.log.Warn("peer unreachable", "peer", p.id, "addr", p.addr, "request", what, "error", err)
		}
	case wasDown:
		n.log.Info("peer reachable again", "peer", p.id, "failed_requests", fails)
	}
}

// replicate sends p's queue until the node stops: a batch whenever
// something is pending, again after the retry interval when it fails.
func (n *node) replicate(ctx context.Context, p *peer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		for {
			b := p.batch()
			if len(b) == 0 {
				break
			}
			err := n.push(ctx, p, b)
			if ctx.Err() != nil {
				return
			}
			n.result(p, "replicate", err)
			if err != nil {
				if !sleep(ctx, n.opts.retry) {
					return
				}
				continue
			}
			p.sent(b)
		}
	}
}

// push sends b to p with PathReplicate.
func (n *node) push(ctx context.Context, p *peer, b []keyed) error {
	var resp replicateResp
	if err := n.call(ctx, p, PathReplicate, replicateReq{From: n.cfg.ID, Versions: b}, &resp); err != nil {
		return err
	}
	n.counters.sent.Add(int64(len(b)))
	return nil
}

// antiEntropy runs a round every interval, with each peer in turn (sorted
// by id), until the node stops.
func (n *node) antiEntropy(ctx context.Context) {
	t := time.NewTicker(n.opts.antiEntropy)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := n.peers[i%len(n.peers)]
		err := n.syncWith(ctx, p)
		if ctx.Err() != nil {
			return
		}
		n.result(p, "anti-entropy", err)
		if err != nil {
			n.counters.aeErrors.Add(1)
			continue
		}
		n.counters.aeRounds.Add(1)
	}
}

// syncWith is one anti-entropy round with p: send the digest of every key,
// merge the versions p answers with, push the ones p wants.
func (n *node) syncWith(ctx context.Context, p *peer) error {
	digest := n.store.snapshot()
	for i := range digest {
		digest[i].Value = nil
	}
	var resp syncResp
	if err := n.call(ctx, p, PathSync, syncReq{From: n.cfg.ID, Digest: digest}, &resp); err != nil {
		return err
	}
	if _, err := n.mergeAll(resp.Versions); err != nil {
		return fmt.Errorf("merge the answer of %s: %w", p.id, err)
	}
	var b []keyed
	bytes := 0
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		err := n.push(ctx, p, b)
		b, bytes = nil, 0
		return err
	}
	for _, k := range resp.Want {
		v, ok := n.store.version(k)
		if !ok {
			continue
		}
		kv := keyed{Key: k, version: v}
		if len(b) > 0 && (len(b) == maxBatch || bytes+kv.size() > maxBatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		b = append(b, kv)
		bytes += kv.size()
	}
	return flush()
}

// mergeAll checks versions received from a peer (all of them first: a
// bad one is a *badPeerMessage and nothing is merged) and merges them;
// it returns how many changed this node's state.
func (n *node) mergeAll(vs []keyed) (int, error) {
	for i := range vs {
		if err := vs[i].check(); err != nil {
			return 0, &badPeerMessage{fmt.Errorf("key %q: %w", vs[i].Key, err)}
		}
	}
	merged := 0
	for i := range vs {
		n.counters.received.Add(1)
		changed, err := n.store.mergeRemote(vs[i].Key, vs[i].version)
		if err != nil {
			return merged, err
		}
		if changed {
			merged++
		}
	}
	return merged, nil
}

// badPeerMessage is a peer message this node refuses (400).
type badPeerMessage struct{ err error }

func (e *badPeerMessage) Error() string { return e.err.Error() }

// call POSTs req to p's path and decodes the answer into resp, in at most
// the peer timeout.
func (n *node) call(ctx context.Context, p *peer, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(body) > maxPeerBody {
		return fmt.Errorf("request of %d bytes is larger than the peer limit %d", len(body), maxPeerBody)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.peerTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	n.cfg.Token.SetOn(hr)
	res, err := n.http.Do(hr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxPeerBody+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(b) > maxPeerBody {
		return fmt.Errorf("answer larger than %d bytes", maxPeerBody)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", res.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, resp); err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	return nil
}

// peerHandler serves the peer protocol. Requests without the node's token
// (when it has one) are refused with 401; with the no-anti-entropy bug
// PathSync is not served (404).
func (n *node) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathReplicate, func(w http.ResponseWriter, r *http.Request) {
		var req replicateReq
		if !readPeer(w, r, &req) {
			return
		}
		merged, err := n.mergeAll(req.Versions)
		if err != nil {
			code := http.StatusInternalServerError
			if _, ok := err.(*badPeerMessage); ok {
				code = http.StatusBadRequest
			}
			peerError(w, code, fmt.Sprintf("replicate from %s: %v", req.From, err))
			return
		}
		writePeer(w, replicateResp{Merged: merged})
	})
	if !n.noAntiEntropy {
		mux.HandleFunc("POST "+PathSync, func(w http.ResponseWriter, r *http.Request) {
			var req syncReq
			if !readPeer(w, r, &req) {
				return
			}
			resp, err := n.answerSync(req.Digest)
			if err != nil {
				peerError(w, http.StatusBadRequest, fmt.Sprintf("sync from %s: %v", req.From, err))
				return
			}
			writePeer(w, resp)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		peerError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s on the lwwkv peer API", r.Method, r.URL.Path))
	})
	tok := n.cfg.Token
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tok.Allows(r) {
			peerError(w, http.StatusUnauthorized, "this node requires its run's token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// answerSync compares a peer's digest with this node's versions: it
// answers with the versions that would change the peer's (those the
// digest lacks first, then those that differ; about maxBatchBytes in all,
// the rest in later rounds), and wants the keys whose peer version would
// change this node's.
func (n *node) answerSync(digest []keyed) (syncResp, error) {
	resp := syncResp{Versions: []keyed{}, Want: []string{}}
	theirs := make(map[string]*version, len(digest))
	for i := range digest {
		d := &digest[i]
		if d.Origin == "" || d.Seq == 0 || d.Clock[d.Origin] < d.Seq {
			return resp, fmt.Errorf("key %q: want an origin, a seq > 0 and a clock covering it", d.Key)
		}
		theirs[d.Key] = &d.version
	}
	wallClockOnly := n.store.wallClockOnly
	var lacking, differ []keyed
	for _, m := range n.store.snapshot() {
		t, ok := theirs[m.Key]
		if !ok {
			lacking = append(lacking, m)
			continue
		}
		delete(theirs, m.Key)
		if same(t, &m.version) {
			continue
		}
		if _, out := merge(*t, true, m.version, wallClockOnly); out.changed {
			differ = append(differ, m)
		}
		if _, out := merge(m.version, true, *t, wallClockOnly); out.changed {
			resp.Want = append(resp.Want, m.Key)
		}
	}
	for k := range theirs {
		resp.Want = append(resp.Want, k)
	}
	slices.Sort(resp.Want)
	bytes := 0
	for _, kv := range append(lacking, differ...) {
		if len(resp.Versions) > 0 && bytes+kv.size() > maxBatchBytes {
			break
		}
		resp.Versions = append(resp.Versions, kv)
		bytes += kv.size()
	}
	return resp, nil
}

// readPeer decodes a peer request (at most maxPeerBody bytes) into v, or
// answers 400/413 and returns false.
func readPeer(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPeerBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		peerError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxPeerBody))
		return false
	case err != nil:
		peerError(w, http.StatusBadRequest, "read body: "+err.Error())
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		peerError(w, http.StatusBadRequest, "body is not a peer message: "+err.Error())
		return false
	}
	return true
}

func writePeer(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		peerError(w, http.StatusInternalServerError, "encode answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func peerError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(b)
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
