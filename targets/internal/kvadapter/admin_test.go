package kvadapter

import (
	"errors"
	"testing"
)

type client struct{ closed bool }

// TestAdminUse: calls share one client per key; a failure that broken
// names drops it (closed, the next call opens another), any other keeps
// it; an empty address opens nothing.
func TestAdminUse(t *testing.T) {
	a := NewAdmin("kv", func(c *client) { c.closed = true })
	opened := 0
	open := func() (*client, error) { opened++; return &client{}, nil }
	errBroken, errReply := errors.New("connection refused"), errors.New("ERR no")
	broken := func(err error) bool { return err == errBroken }

	var first *client
	use := func(err error) func(*client) error {
		return func(c *client) error {
			if first == nil {
				first = c
			}
			return err
		}
	}
	if err := a.Use("h:1", "k", open, use(nil), broken); err != nil || opened != 1 {
		t.Fatalf("first use: %v, %d opened", err, opened)
	}
	if err := a.Use("h:1", "k", open, use(errReply), broken); err != errReply || opened != 1 || !a.Has("k") {
		t.Fatalf("a failure that leaves the client usable: %v, %d opened, cached %v", err, opened, a.Has("k"))
	}
	if err := a.Use("h:1", "k", open, use(errBroken), broken); err != errBroken || a.Has("k") || !first.closed {
		t.Fatalf("a failure that breaks the client: %v, cached %v, closed %v", err, a.Has("k"), first.closed)
	}
	if err := a.Use("h:1", "k", open, use(nil), nil); err != nil || opened != 2 {
		t.Fatalf("after a drop: %v, %d opened, want a new client", err, opened)
	}
	if err := a.Use("", "k2", open, use(nil), nil); err == nil || err.Error() != "kv: no address" || opened != 2 {
		t.Fatalf("no address: %v, %d opened", err, opened)
	}
}
