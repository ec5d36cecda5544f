package etcdkv

import (
	"context"
	"errors"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// tokenAuth holds a client's etcd user and password, and the auth token
// they were last exchanged for.
//
// clientv3 can do this itself (Config.Username and Password), but it
// authenticates inside clientv3.New, waiting for a connection to the
// member: New would then block while the member is down, and fail when
// it does not come up. The adapter keeps New immediate instead, and
// authenticates in the first operation that needs a token (an
// Authenticate call, within that operation's timeout): a failure to
// authenticate fails that operation, and no other, before its request
// was sent. The token goes with every request as gRPC metadata ("token",
// as clientv3 sends it). An answer saying the token no longer holds
// (invalid auth token: the member restarted, or a simple token expired;
// user name is empty: auth was enabled since; auth revision is old) is a
// definite refusal (fail), and the next operation authenticates again.
//
// A nil *tokenAuth (no credentials) sends no token. Safe for concurrent
// use.
type tokenAuth struct {
	user, password string

	mu         sync.Mutex
	token      string
	notEnabled bool // the member said auth is not enabled: send no token
}

// newTokenAuth returns the auth of user and password, nil for none.
func newTokenAuth(user, password string) *tokenAuth {
	if user == "" && password == "" {
		return nil
	}
	return &tokenAuth{user: user, password: password}
}

// authenticateFunc exchanges user and password for a token.
type authenticateFunc func(ctx context.Context, user, password string) (string, error)

// authenticateOn returns the authenticateFunc of a gRPC connection that
// does not wait for a connection (for Ping and Status).
func authenticateOn(conn *grpc.ClientConn) authenticateFunc {
	return func(ctx context.Context, user, password string) (string, error) {
		resp, err := etcdserverpb.NewAuthClient(conn).Authenticate(ctx,
			&etcdserverpb.AuthenticateRequest{Name: user, Password: password}, grpc.WaitForReady(false))
		if err != nil {
			return "", err
		}
		return resp.Token, nil
	}
}

// errAuth wraps the error of an Authenticate call: the operation's own
// request was not sent.
type errAuth struct{ err error }

func (e *errAuth) Error() string { return e.err.Error() }
func (e *errAuth) Unwrap() error { return e.err }

// with returns ctx carrying the token, authenticating first (with
// authenticate, bounded by ctx) when there is none. Its error is an
// *errAuth.
func (a *tokenAuth) with(ctx context.Context, authenticate authenticateFunc) (context.Context, error) {
	if a == nil {
		return ctx, nil
	}
	a.mu.Lock()
	token, notEnabled := a.token, a.notEnabled
	a.mu.Unlock()
	if notEnabled {
		return ctx, nil
	}
	if token == "" {
		t, err := authenticate(ctx, a.user, a.password)
		if errors.Is(rpctypes.Error(err), rpctypes.ErrAuthNotEnabled) {
			a.mu.Lock()
			a.notEnabled = true
			a.mu.Unlock()
			return ctx, nil
		}
		if err != nil {
			return ctx, &errAuth{err}
		}
		a.mu.Lock()
		a.token, token = t, t
		a.mu.Unlock()
	}
	return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, token), nil
}

// failed forgets the token (or that auth is off) after an error that
// says it no longer holds.
func (a *tokenAuth) failed(err error) {
	if a == nil || err == nil {
		return
	}
	e := rpctypes.Error(err)
	if errors.Is(e, rpctypes.ErrInvalidAuthToken) || errors.Is(e, rpctypes.ErrUserEmpty) || errors.Is(e, rpctypes.ErrAuthOldRevision) {
		a.mu.Lock()
		a.token, a.notEnabled = "", false
		a.mu.Unlock()
	}
}
