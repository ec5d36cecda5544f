package kvadapter

import (
	"errors"
	"time"

	"github.com/faultline/faultline/internal/idlecache"
)

// AdminIdle is how long an admin client may stay unused before it is
// closed.
const AdminIdle = 10 * time.Second

// Admin is an adapter's cache of the clients its Ping and Status use: one
// per address and settings (Conn.Key), shared by concurrent calls (the
// observer asks every node for its status several times a second),
// closed once unused for AdminIdle. Safe for concurrent use.
type Admin[C any] struct {
	*idlecache.Cache[C]
	adapter string
}

// NewAdmin returns the empty cache of adapter's admin clients, which
// closes a client with close.
func NewAdmin[C any](adapter string, close func(C)) *Admin[C] {
	return &Admin[C]{Cache: idlecache.New(AdminIdle, close), adapter: adapter}
}

// Use calls f with the admin client for addr with the settings key names
// (open makes it when the cache holds none; it must not block), and then
// ends the use: the client stays cached, unless f failed and broken (if
// not nil) says that the failure leaves the client unusable, when it is
// discarded and the next call opens a new one. It returns open's error or
// f's. An empty addr is an error ("NAME: no address"), never a client of
// some default address.
func (a *Admin[C]) Use(addr, key string, open func() (C, error), f func(C) error, broken func(error) bool) (err error) {
	if addr == "" {
		return errors.New(a.adapter + ": no address")
	}
	l, err := a.Acquire(key, open)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && broken != nil && broken(err) {
			l.Discard()
		} else {
			l.Release()
		}
	}()
	return f(l.Value())
}
