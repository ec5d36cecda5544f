package pbkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/faultline/faultline/targets"
)

// maxPeerBody bounds a peer message, in bytes (maxBatch entries of large
// values fit).
const maxPeerBody = 32 << 20

// appendReq is the primary's replication message (empty: a heartbeat).
type appendReq struct {
	Epoch     uint64  `json:"epoch"`
	Leader    string  `json:"leader"`
	PrevIndex uint64  `json:"prev_index"`
	PrevEpoch uint64  `json:"prev_epoch"`
	Entries   []entry `json:"entries,omitempty"`
	Commit    uint64  `json:"commit"`
}

// appendResp answers it: Success with Match, the last index now stored
// (durably), or the receiver's newer Epoch, or Hint, where the logs may
// diverge (the primary goes back to it).
type appendResp struct {
	Epoch   uint64 `json:"epoch"`
	Success bool   `json:"success"`
	Match   uint64 `json:"match,omitempty"`
	Hint    uint64 `json:"hint,omitempty"`
}

// voteReq asks for a vote in Epoch (Pre: would you vote, no state change).
type voteReq struct {
	Epoch     uint64 `json:"epoch"`
	Candidate string `json:"candidate"`
	LastEpoch uint64 `json:"last_epoch"`
	LastIndex uint64 `json:"last_index"`
	Pre       bool   `json:"pre,omitempty"`
}

type voteResp struct {
	Epoch   uint64 `json:"epoch"`
	Granted bool   `json:"granted"`
	Reason  string `json:"reason,omitempty"`
}

// check says what is wrong with an append message.
func (r *appendReq) check() error {
	if r.Epoch == 0 || r.Leader == "" || r.PrevEpoch > r.Epoch {
		return errors.New("want epoch > 0, a leader and prev_epoch <= epoch")
	}
	for i, e := range r.Entries {
		if e.Index != r.PrevIndex+uint64(i)+1 || e.Epoch == 0 || e.Epoch > r.Epoch {
			return fmt.Errorf("entry %d: index %d epoch %d: want index %d and 0 < epoch <= %d", i, e.Index, e.Epoch, r.PrevIndex+uint64(i)+1, r.Epoch)
		}
		switch e.Op {
		case "noop":
		case "put", "cas":
			if len(e.Value) == 0 || (e.Op == "cas" && len(e.From) == 0) {
				return fmt.Errorf("entry %d: %s without its values", e.Index, e.Op)
			}
		default:
			return fmt.Errorf("entry %d: unknown op %q", e.Index, e.Op)
		}
	}
	return nil
}

// transport sends peer messages: HTTP/JSON to the address this node dials
// for each peer (NodeConfig.Peers: maybe a proxy), at most 4 connections
// per peer, every request bounded by timeout (connecting included). Safe
// for concurrent use.
type transport struct {
	addrs   map[string]string
	token   targets.Token
	timeout time.Duration
	tr      *http.Transport
	hc      *http.Client
}

func newTransport(cfg targets.NodeConfig, timeout time.Duration) *transport {
	tr := &http.Transport{
		Proxy:                 nil, // peers are dialled directly (or through faultline's link proxies)
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		MaxConnsPerHost:       4,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
	return &transport{addrs: cfg.Peers, token: cfg.Token, timeout: timeout, tr: tr, hc: &http.Client{Transport: tr}}
}

func (t *transport) close() { t.tr.CloseIdleConnections() }

func (t *transport) appendEntries(ctx context.Context, peer string, req appendReq) (appendResp, error) {
	var resp appendResp
	return resp, t.call(ctx, peer, "/peer/append", req, &resp)
}

func (t *transport) vote(ctx context.Context, peer string, req voteReq) (voteResp, error) {
	var resp voteResp
	return resp, t.call(ctx, peer, "/peer/vote", req, &resp)
}

func (t *transport) call(ctx context.Context, peer, path string, in, out any) error {
	addr, ok := t.addrs[peer]
	if !ok || addr == "" {
		return fmt.Errorf("pbkv: no address for peer %q: pass it with --peer %s=ADDR", peer, peer)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	t.token.SetOn(req)
	resp, err := t.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("peer %s %s: %s: %s", peer, path, resp.Status, bytes.TrimSpace(b))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxPeerBody)).Decode(out)
}

// peerServer serves the peer protocol on PeerListen.
type peerServer struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

// servePeers listens on addr and serves POST /peer/append and POST
// /peer/vote until close. With a token (NodeConfig.Token) it answers 401
// to every request that does not carry it.
func (n *node) servePeers(addr string) (*peerServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pbkv: listen for peers on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /peer/append", func(w http.ResponseWriter, r *http.Request) {
		var req appendReq
		if !decodePeer(w, r, &req) {
			return
		}
		if err := req.check(); err != nil {
			http.Error(w, "pbkv: bad append: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp := n.onAppend(req)
		n.answerPeer(w, resp)
	})
	mux.HandleFunc("POST /peer/vote", func(w http.ResponseWriter, r *http.Request) {
		var req voteReq
		if !decodePeer(w, r, &req) {
			return
		}
		if req.Epoch == 0 || req.Candidate == "" {
			http.Error(w, "pbkv: bad vote request: want epoch > 0 and a candidate", http.StatusBadRequest)
			return
		}
		n.answerPeer(w, n.onVote(req))
	})
	var h http.Handler = mux
	if tok := n.cfg.Token; tok != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tok.Allows(r) {
				http.Error(w, "pbkv: the peer API requires the run's token", http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	s := &peerServer{addr: ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("peer server", "error", err)
		}
	}()
	return s, nil
}

// close stops the server, waiting up to a second for handlers in flight.
func (s *peerServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
}

func decodePeer(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPeerBody)).Decode(v); err != nil {
		http.Error(w, "pbkv: bad peer message: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// answerPeer writes v, or 500 if the node died meanwhile (what it would
// acknowledge may not be stored).
func (n *node) answerPeer(w http.ResponseWriter, v any) {
	if n.dead.Load() {
		http.Error(w, "pbkv: "+n.cfg.ID+" is stopping: its data directory failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
