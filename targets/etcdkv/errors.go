package etcdkv

import (
	"context"
	"errors"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// definiteTexts are the descriptions of errors that certainly leave the
// store unchanged, whatever their gRPC code (which differs between etcd
// versions: "not capable" is Unavailable in 3.4, FailedPrecondition in
// 3.6). Checked against the etcd 3.4.23 server
// (etcdserver/api/v3rpc/interceptor.go, etcdserver/v3_server.go
// processInternalRaftRequestOnce, raft/raft.go):
//
//   - "no leader": the unary interceptor refuses a request that asks for a
//     leader (clientv3.WithRequireLeader, which writes send) before any
//     handler runs;
//   - "not capable", "rpc not supported for learner": the same
//     interceptor, before any handler;
//   - "too many requests": refused before the proposal, when the applied
//     index lags the committed one too far;
//   - "mvcc: database space exceeded": refused by the quota check before
//     the proposal, or applied as an error that changes nothing;
//   - "raft proposal dropped" (codes.Unknown in 3.4, where
//     raft.ErrProposalDropped has no gRPC mapping): raft refused to append
//     the entry (no leader known, a leader transfer under way), so it was
//     never replicated;
//   - "trying to send message larger than max": grpc-go's own check,
//     before anything is sent.
var definiteTexts = []string{
	"etcdserver: no leader",
	"etcdserver: not capable",
	"etcdserver: rpc not supported for learner",
	"etcdserver: too many requests",
	"etcdserver: mvcc: database space exceeded",
	"raft proposal dropped",
	"trying to send message larger than max",
}

// definiteCodes are the gRPC codes that etcd (3.4 to 3.6) only ever
// answers for a request it refused or applied without effect: invalid
// arguments (empty key, request too large, too many ops), compacted or
// future revisions, missing leases, auth and permission errors (checked
// before the proposal or in the apply, which then changes nothing), and
// a method the server does not have.
var definiteCodes = map[codes.Code]bool{
	codes.InvalidArgument:    true,
	codes.FailedPrecondition: true,
	codes.OutOfRange:         true,
	codes.NotFound:           true,
	codes.AlreadyExists:      true,
	codes.PermissionDenied:   true,
	codes.Unauthenticated:    true,
	codes.Unimplemented:      true,
}

// errInfo is what an error of the client says: its gRPC code (Unknown
// for an error that is not a status) and its description.
func errInfo(err error) (codes.Code, string) {
	var ee rpctypes.EtcdError
	switch {
	case errors.As(err, &ee):
		return ee.Code(), ee.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, "context deadline exceeded"
	case errors.Is(err, context.Canceled):
		return codes.Canceled, "context canceled"
	}
	if s, ok := status.FromError(err); ok {
		return s.Code(), s.Message()
	}
	return codes.Unknown, err.Error()
}

// isDefinite reports whether a write that failed with err, once its
// request may have been sent, certainly had no effect. When unsure it
// says no: the outcome is then info.
func isDefinite(err error) bool {
	code, desc := errInfo(err)
	if definiteCodes[code] {
		return true
	}
	for _, text := range definiteTexts {
		if strings.HasPrefix(desc, text) {
			return true
		}
	}
	return false
}

// classify maps the error of an operation f to its outcome type and error
// text. sent says whether its request may have been sent (connTracker).
//
//   - a get is fail, whatever happened: a read has no effect;
//   - a write whose request was certainly not sent is fail;
//   - a write refused by the server in a way that certainly left the
//     store unchanged (isDefinite) is fail;
//   - any other failed write is info: a timeout (the op's deadline, gRPC's
//     DeadlineExceeded, etcd's "request timed out" family), a connection
//     that broke once the request may have been sent (Unavailable, EOF,
//     Canceled), a server stopping, a leader change, anything unknown.
func classify(f string, err error, sent bool, notSent func() string) (history.Type, string) {
	text := describe(err)
	switch {
	case !sent:
		return history.Fail, text + " (not sent: " + notSent() + ")"
	case f == fGet:
		return history.Fail, text
	case isDefinite(err):
		return history.Fail, text
	}
	return history.Info, text
}

// describe returns a short error text, starting "etcd: ": "etcd: timeout",
// "etcd: no leader", "etcd: unavailable: error reading from server: EOF".
func describe(err error) string {
	code, desc := errInfo(err)
	switch code {
	case codes.DeadlineExceeded:
		return "etcd: timeout"
	case codes.Canceled:
		if desc == "context canceled" {
			return "etcd: canceled"
		}
	}
	if d, ok := strings.CutPrefix(desc, "etcdserver: "); ok {
		// The server's own error: its text names it.
		return "etcd: " + kvadapter.Shorten(d, 200)
	}
	name := strings.ToLower(code.String())
	if code == codes.Unknown {
		return "etcd: " + kvadapter.Shorten(desc, 200)
	}
	return "etcd: " + name + ": " + kvadapter.Shorten(desc, 200)
}
