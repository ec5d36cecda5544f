package etcdkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets/internal/kvtest"
)

// TestClassify is the error-mapping rule as a table: gets fail, writes
// that were never sent fail, definite refusals fail, everything else is
// info.
func TestClassify(t *testing.T) {
	notSent := func() string { return "no connection: dial tcp: connect: connection refused" }
	for _, tc := range []struct {
		f    string
		err  error
		sent bool
		want history.Type
		text string
	}{
		{"get", context.DeadlineExceeded, true, history.Fail, "etcd: timeout"},
		{"get", status.Error(codes.Unavailable, "error reading from server: EOF"), true, history.Fail, "etcd: unavailable: error reading from server: EOF"},
		{"put", context.DeadlineExceeded, false, history.Fail, "etcd: timeout (not sent: no connection: dial tcp: connect: connection refused)"},
		{"cas", status.Error(codes.Unavailable, "connection error"), false, history.Fail, "etcd: unavailable: connection error (not sent: no connection: dial tcp: connect: connection refused)"},
		{"put", context.DeadlineExceeded, true, history.Info, "etcd: timeout"},
		{"put", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, history.Info, "etcd: timeout"},
		{"put", context.Canceled, true, history.Info, "etcd: canceled"},
		{"put", status.Error(codes.Canceled, "grpc: the client connection is closing"), true, history.Info, "etcd: canceled: grpc: the client connection is closing"},
		{"put", status.Error(codes.Unavailable, "error reading from server: EOF"), true, history.Info, "etcd: unavailable: error reading from server: EOF"},
		{"cas", status.Error(codes.Unavailable, "transport is closing"), true, history.Info, "etcd: unavailable: transport is closing"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCTimeout), true, history.Info, "etcd: request timed out"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCTimeoutDueToLeaderFail), true, history.Info, "etcd: request timed out, possibly due to previous leader failure"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCTimeoutDueToConnectionLost), true, history.Info, "etcd: request timed out, possibly due to connection lost"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCLeaderChanged), true, history.Info, "etcd: leader changed"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCStopped), true, history.Info, "etcd: server stopped"},
		{"put", status.Error(codes.Unknown, "raft: stopped"), true, history.Info, "etcd: raft: stopped"},
		{"put", status.Error(codes.Internal, "stream terminated by RST_STREAM with error code: INTERNAL_ERROR"), true, history.Info, "etcd: internal: stream terminated by RST_STREAM with error code: INTERNAL_ERROR"},
		{"put", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5 vs. 4)"), true, history.Info, "etcd: resourceexhausted: grpc: received message larger than max (5 vs. 4)"},
		{"put", errors.New("something else"), true, history.Info, "etcd: something else"},
		// Definite: the 3.4 server's texts, as the 3.6 client converts them
		// (rpctypes.Error) and as raw statuses with the 3.4 codes.
		{"put", rpctypes.Error(rpctypes.ErrGRPCNoLeader), true, history.Fail, "etcd: no leader"},
		{"cas", status.Error(codes.Unavailable, "etcdserver: no leader"), true, history.Fail, "etcd: no leader"},
		{"put", status.Error(codes.Unavailable, "etcdserver: not capable"), true, history.Fail, "etcd: not capable"},
		{"put", status.Error(codes.Unavailable, "etcdserver: rpc not supported for learner"), true, history.Fail, "etcd: rpc not supported for learner"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCRequestTooManyRequests), true, history.Fail, "etcd: too many requests"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCNoSpace), true, history.Fail, "etcd: mvcc: database space exceeded"},
		{"put", status.Error(codes.Unknown, "raft proposal dropped"), true, history.Fail, "etcd: raft proposal dropped"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCRequestTooLarge), true, history.Fail, "etcd: request is too large"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCEmptyKey), true, history.Fail, "etcd: key is not provided"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCPermissionDenied), true, history.Fail, "etcd: permission denied"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCInvalidAuthToken), true, history.Fail, "etcd: invalid auth token"},
		{"put", rpctypes.Error(rpctypes.ErrGRPCCompacted), true, history.Fail, "etcd: mvcc: required revision has been compacted"},
		{"put", status.Error(codes.ResourceExhausted, "trying to send message larger than max (2000000 vs. 1000)"), true, history.Fail, "etcd: resourceexhausted: trying to send message larger than max (2000000 vs. 1000)"},
		{"put", status.Error(codes.Unimplemented, "unknown service"), true, history.Fail, "etcd: unimplemented: unknown service"},
	} {
		typ, text := classify(tc.f, tc.err, tc.sent, notSent)
		if typ != tc.want || text != tc.text {
			t.Errorf("%s, %v, sent %v: %s %q, want %s %q", tc.f, tc.err, tc.sent, typ, text, tc.want, tc.text)
		}
		if !strings.HasPrefix(text, "etcd: ") || history.IsMismatch(typ, text) {
			t.Errorf("%s, %v: text %q", tc.f, tc.err, text)
		}
	}
}

func TestDescribeShort(t *testing.T) {
	text := describe(status.Error(codes.Unavailable, strings.Repeat("é", 300)))
	if len(text) > 240 || !strings.HasSuffix(text, "...") {
		t.Errorf("long error: %d bytes: %q", len(text), text)
	}
}

// TestNotSentReason: why a request was not sent, from the tracker's
// state: the last dial's error, no connection ever, the last connection
// never answered, or it answered and has closed since.
func TestNotSentReason(t *testing.T) {
	for _, tc := range []struct {
		t    *connTracker
		want string
	}{
		{&connTracker{}, "no connection was made"},
		{&connTracker{lastDial: errors.New("dial tcp: connect: connection refused")}, "no connection: dial tcp: connect: connection refused"},
		{&connTracker{last: &trackedConn{}}, "connected, but the member never answered the handshake"},
		{&connTracker{last: &trackedConn{ready: true, closed: true}}, "the connection to the member closed, and no new one was ready"},
	} {
		if got := tc.t.notSentReason(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.t, got, tc.want)
		}
	}
}

// TestMemberNames: a member id is named from MemberList, listed again at
// most once a second; an id no member has (or a failed list) is its hex
// id, never another name.
func TestMemberNames(t *testing.T) {
	calls := 0
	var fail bool
	m := &memberNames{list: func(context.Context) ([]*etcdserverpb.Member, error) {
		calls++
		if fail {
			return nil, errors.New("unreachable")
		}
		return []*etcdserverpb.Member{{ID: 0x10, Name: "n1"}, {ID: 0x20, Name: ""}}, nil
	}}
	ctx := context.Background()
	if got := m.name(ctx, 0x10); got != "n1" {
		t.Errorf("name(0x10) = %q", got)
	}
	if got := m.name(ctx, 0x10); got != "n1" || calls != 1 {
		t.Errorf("name(0x10) again = %q after %d lists, want a cached n1", got, calls)
	}
	// An unstarted member has no name yet; an unknown id within a second
	// of the last list is not listed again.
	if got := m.name(ctx, 0x20); got != "20" || calls != 1 {
		t.Errorf("name(0x20) = %q after %d lists, want 20 from the cache's age", got, calls)
	}
	m.listed = m.listed.Add(-refreshEvery)
	if got := m.name(ctx, 0x20); got != "20" || calls != 2 {
		t.Errorf("name(0x20) = %q after %d lists", got, calls)
	}
	fail = true
	m.listed = m.listed.Add(-refreshEvery)
	if got, want := m.name(ctx, 0x8e9e05c52164694d), fmt.Sprintf("%x", uint64(0x8e9e05c52164694d)); got != want {
		t.Errorf("unknown id with a failed list: %q, want %q", got, want)
	}
	if got := m.name(ctx, 0); got != "" {
		t.Errorf("name(0) = %q, want empty", got)
	}
}

// TestNothingSentBeforeHandshake guards the assumption the "not sent" rule
// rests on (connTracker): gRPC writes no request before the server's
// handshake. A listener that accepts and reads but never writes gets the
// HTTP/2 preface and connection-level frames, never a HEADERS or DATA
// frame; the put is fail, not sent. If a gRPC upgrade breaks this, the
// rule must change.
func TestNothingSentBeforeHandshake(t *testing.T) {
	l := kvtest.Listen(t)
	c, err := New(l.Addr, Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	out := c.Do(context.Background(), history.Op{F: "put", Key: "k", Value: json.RawMessage(`1`)})
	if out.Type != history.Fail || !strings.Contains(out.Error, "not sent: connected, but the member never answered the handshake") {
		t.Errorf("put to a listener that never answers: %+v, want fail, not sent (no handshake)", out)
	}
	c.Close()
	conns := l.Close(t, 2*time.Second)
	if len(conns) == 0 {
		t.Fatal("no connection was made")
	}
	for i, b := range conns {
		const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
		if !bytes.HasPrefix(b, []byte(preface)) {
			t.Fatalf("connection %d: %q does not start with the HTTP/2 preface", i, b)
		}
		for b = b[len(preface):]; len(b) >= 9; {
			n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
			typ := b[3]
			if typ == 0x0 || typ == 0x1 { // DATA, HEADERS
				t.Fatalf("connection %d: a frame of type %d was sent before the server's handshake", i, typ)
			}
			if len(b) < 9+n {
				break
			}
			b = b[9+n:]
		}
	}
}
