package rediskv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// Ping returns nil once the server at addr (host:port, its own client
// address) answers PING with PONG, authenticated with the credentials in
// opts (checked as New checks them), and, when it is a replica, reports
// its link to its primary up (master_link_status:up): a replica that has
// not finished its first sync serves an empty or old data set, so it is
// not ready. Bounded by ctx. It does not wait for a connection: a refused
// dial is an error at once. Safe for concurrent use; it shares the client
// for addr and these credentials with Status.
func Ping(ctx context.Context, addr string, opts map[string]string) error {
	cfg, err := parseOptions(opts)
	if err != nil {
		return err
	}
	var pong, text string
	err = useAdmin(addr, cfg, " at "+addr, func(c *redis.Client) (err error) {
		if pong, err = c.Ping(ctx).Result(); err != nil || pong != "PONG" {
			return err
		}
		text, err = c.Info(ctx, "replication").Result()
		return err
	})
	switch {
	case err != nil:
		return err
	case pong != "PONG":
		return fmt.Errorf("redis: PING at %s answered %.40q, not PONG", addr, pong)
	}
	st, err := parseReplication("", text)
	if err != nil {
		return err
	}
	if link := st.Counters["master_link_status"]; st.Role == "replica" && link != "up" {
		return fmt.Errorf("redis: replica at %s is not in sync with its primary yet (master_link_status %v)", addr, link)
	}
	return nil
}

// Status reads node n's status on its own client address (n.Client,
// never a proxy) with INFO replication, bounded by ctx:
//
//   - ID: n.ID (a Redis server does not know its node id);
//   - Role: "primary" for role:master, "replica" for role:slave (the
//     role field as the server spells it otherwise);
//   - CommitIndex: master_repl_offset, the replication offset (on a
//     replica, the offset of the primary's stream it has received);
//   - Counters: master_repl_offset, slave_repl_offset (a replica's
//     processed offset), master_link_status (a replica's link to its
//     primary: up or down), connected_slaves, as the server reports them;
//   - Raw: every field of the section as a JSON object of strings.
//
// Term stays 0 (Redis has none) and Leader stays "": a replica names its
// primary only by the address it replicates from (master_host,
// master_port), which is not the address clients dial when links are
// proxied, nor one Status can map to a node id in general.
//
// opts are checked as New checks them. It shares one client per address
// and credentials with Ping (closed after 10 s idle) and does not wait
// for a connection. Safe for concurrent use: the observer polls every
// node every 250 ms.
func Status(ctx context.Context, n targets.NodeInfo, opts map[string]string) (targets.Status, error) {
	cfg, err := parseOptions(opts)
	if err != nil {
		return targets.Status{}, err
	}
	if n.Client == "" {
		return targets.Status{}, fmt.Errorf("redis: node %s has no client address", n.ID)
	}
	var text string
	err = useAdmin(n.Client, cfg, ": status of "+n.ID+" at "+n.Client, func(c *redis.Client) (err error) {
		text, err = c.Info(ctx, "replication").Result()
		return err
	})
	if err != nil {
		return targets.Status{}, err
	}
	return parseReplication(n.ID, text)
}

// parseReplication turns the text of INFO replication into a Status.
func parseReplication(id, text string) (targets.Status, error) {
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	role, ok := fields["role"]
	if !ok {
		return targets.Status{}, fmt.Errorf("redis: status of %s: INFO replication has no role field: %.100q", id, text)
	}
	switch role {
	case "master":
		role = "primary"
	case "slave":
		role = "replica"
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return targets.Status{}, fmt.Errorf("redis: status of %s: %v", id, err)
	}
	st := targets.Status{ID: id, Role: role, Counters: map[string]any{}, Raw: raw}
	for _, k := range []string{"master_repl_offset", "slave_repl_offset", "connected_slaves"} {
		if v, ok := fields[k]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				st.Counters[k] = n
				if k == "master_repl_offset" && n >= 0 {
					st.CommitIndex = uint64(n)
				}
			}
		}
	}
	if v, ok := fields["master_link_status"]; ok {
		st.Counters["master_link_status"] = v
	}
	return st, nil
}

// admin is the process's cache of admin clients, one per address,
// credentials, database and TLS settings.
var admin = kvadapter.NewAdmin(AdapterName, func(c *redis.Client) { c.Close() })

// useAdmin calls f with the admin client for addr with cfg's settings
// (adminKey), making it if there is none (admin.Use: an empty addr is an
// error), and returns f's error described (describe, without the
// password) and followed by where. A client whose connection failed (no
// answer, a refused dial) is dropped, so that the next call dials afresh
// (go-redis's pool stops dialing after as many failed dials as it has
// connections, until a background probe connects, once a second: a
// readiness probe would see a server up to a second late); after an error
// reply it stays.
func useAdmin(addr string, cfg config, where string, f func(*redis.Client) error) error {
	err := admin.Use(addr, adminKey(addr, cfg), func() (*redis.Client, error) {
		quiet.Do(logging.Disable)
		return newRedisClient(addr, cfg.options(DefaultTimeout), nil, 4), nil
	}, f, func(err error) bool {
		_, reply := replyOf(err)
		return !reply
	})
	if err == nil || addr == "" {
		return err
	}
	return errors.New(kvadapter.Redact(describe(err), cfg.Password) + where)
}

// adminKey is the cache key of the admin client for addr with cfg: the
// address and a digest of everything that changes a connection (the
// credentials, the database, the TLS options).
func adminKey(addr string, cfg config) string { return cfg.Key(addr, strconv.Itoa(cfg.db)) }

// LocalRead reads key from server n's own data set on its own client
// address (n.Client, never a proxy) with GET: on a replica, what it has
// replicated so far; what the convergence checker compares across the
// primary and its replicas. An absent key is JSON null; a stored value
// that is not JSON is an error. opts and the client are Status's. Safe
// for concurrent use.
func LocalRead(ctx context.Context, n targets.NodeInfo, key string, opts map[string]string) (json.RawMessage, error) {
	cfg, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	if n.Client == "" {
		return nil, fmt.Errorf("redis: node %s has no client address", n.ID)
	}
	var out json.RawMessage
	err = useAdmin(n.Client, cfg, ": local read of "+n.ID+" at "+n.Client, func(c *redis.Client) error {
		v, err := c.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			out = json.RawMessage("null")
			return nil
		case err != nil:
			return err
		}
		out, err = kvadapter.LocalValue([]byte(v))
		return err
	})
	return out, err
}
