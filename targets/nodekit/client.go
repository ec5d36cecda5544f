package nodekit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/faultline/faultline/targets"
)

// AdminTimeout bounds one call of ReadStatus, SetClock or LocalRead when
// the caller's context allows longer: a paused node never answers.
const AdminTimeout = 2 * time.Second

// adminHTTP is shared by the client functions: no proxy (the admin path is
// never faulted), keep-alives, a few idle connections per node.
var adminHTTP = &http.Client{
	Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// AdminCall sends one request to n's admin API, as ReadStatus and SetClock
// do, for a system's own admin routes: with n's token, in at most
// AdminTimeout, the answer's status code and body (at most MaxBody bytes).
// A nil body sends none. Errors name the node and the request. Safe for
// concurrent use.
func AdminCall(ctx context.Context, n targets.NodeInfo, method, path string, body []byte) (int, []byte, error) {
	return adminCall(ctx, n, method, path, body)
}

// adminCall sends one request to n's admin API, with n.Token if it has one,
// and returns the status code and body (at most MaxBody bytes). Errors name
// the node and the request.
func adminCall(ctx context.Context, n targets.NodeInfo, method, path string, body []byte) (int, []byte, error) {
	what := method + " " + path
	if n.Admin == "" {
		return 0, nil, fmt.Errorf("node %s: %s: the node has no admin address", n.ID, what)
	}
	ctx, cancel := context.WithTimeout(ctx, AdminTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.Admin+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("node %s: %s: %w", n.ID, what, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	n.Token.SetOn(req)
	resp, err := adminHTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("node %s: %s at %s: %w", n.ID, what, n.Admin, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("node %s: %s at %s: read answer: %w", n.ID, what, n.Admin, err)
	}
	if len(b) > MaxBody {
		return 0, nil, fmt.Errorf("node %s: %s at %s: answer larger than %d bytes", n.ID, what, n.Admin, MaxBody)
	}
	return resp.StatusCode, b, nil
}

func answerError(n targets.NodeInfo, what string, code int, body []byte) error {
	return fmt.Errorf("node %s: %s at %s: HTTP %d: %.200s", n.ID, what, n.Admin, code, strings.TrimSpace(string(body)))
}

// ReadStatus reads node n's status with GET /admin/status on its admin
// address (a path faults never cut), in at most AdminTimeout. Status.Raw
// holds the whole answer. Safe for concurrent use.
func ReadStatus(ctx context.Context, n targets.NodeInfo) (targets.Status, error) {
	const what = "GET /admin/status"
	code, body, err := adminCall(ctx, n, http.MethodGet, "/admin/status", nil)
	if err != nil {
		return targets.Status{}, err
	}
	if code != http.StatusOK {
		return targets.Status{}, answerError(n, what, code, body)
	}
	var st targets.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return targets.Status{}, fmt.Errorf("node %s: %s at %s: the answer is not a status object: %w", n.ID, what, n.Admin, err)
	}
	st.Raw = json.RawMessage(body)
	return st, nil
}

// SetClock sets node n's clock to c with POST /admin/clock (the zero
// Clock resets it to the wall clock), in at most AdminTimeout: the node's
// clock then reads the wall clock plus c.Offset plus c.Drift seconds per
// real second from the moment the node takes the call (see the package
// doc). The offset is sent in whole milliseconds (truncated). A non-2xx
// answer means the system does not support clock faults (or refused the
// values), and the error says so with the node's answer. Safe for
// concurrent use.
func SetClock(ctx context.Context, n targets.NodeInfo, c targets.Clock) error {
	const what = "POST /admin/clock"
	body, err := json.Marshal(clockBody{OffsetMS: ptr(c.Offset.Milliseconds()), Drift: ptr(c.Drift)})
	if err != nil { // a NaN or infinite drift
		return fmt.Errorf("node %s: %s: drift %v: %w", n.ID, what, c.Drift, err)
	}
	code, rb, err := adminCall(ctx, n, http.MethodPost, "/admin/clock", body)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("%w: the system does not support clock faults, or not these values", answerError(n, what, code, rb))
	}
	return nil
}

// LocalRead reads key from node n's own state, bypassing replication, with
// GET /admin/kv/{key}, in at most AdminTimeout. An absent key gives JSON
// null. Safe for concurrent use.
func LocalRead(ctx context.Context, n targets.NodeInfo, key string) (json.RawMessage, error) {
	path := "/admin/kv/" + url.PathEscape(key)
	what := "GET " + path
	code, body, err := adminCall(ctx, n, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, answerError(n, what, code, body)
	}
	var v valueBody
	if err := json.Unmarshal(body, &v); err != nil || v.Value == nil {
		return nil, fmt.Errorf(`node %s: %s at %s: want {"value": V}, got %.200s`, n.ID, what, n.Admin, strings.TrimSpace(string(body)))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v.Value); err != nil {
		return nil, fmt.Errorf("node %s: %s at %s: %w", n.ID, what, n.Admin, err)
	}
	return json.RawMessage(buf.Bytes()), nil
}

// Hooks returns sys with the kit's client functions in every capability
// it leaves nil (Status: ReadStatus, SetClock: SetClock, LocalRead:
// LocalRead), so a kit-based system registers in one line:
//
//	targets.RegisterSystem(nodekit.Hooks(targets.System{...}))
func Hooks(sys targets.System) targets.System {
	if sys.Status == nil {
		sys.Status = ReadStatus
	}
	if sys.SetClock == nil {
		sys.SetClock = SetClock
	}
	if sys.LocalRead == nil {
		sys.LocalRead = LocalRead
	}
	return sys
}
