package rediskv

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// definiteCodes are the error codes (the first word of an error reply)
// with which Redis refuses a command without executing it, checked
// against the Redis 7.0 server (server.c processCommand, scripting):
//
//   - READONLY: a write sent to a replica (replica-read-only yes);
//   - NOSCRIPT: EVALSHA of a script the server does not hold (the client
//     then sends EVAL: see Client.cas);
//   - WRONGTYPE: the key holds another type (the cas script's GET: the
//     script stops before its write);
//   - NOAUTH, WRONGPASS, NOPERM: not authenticated, a wrong password, an
//     ACL that denies the command or the key;
//   - OOM: maxmemory reached, writes refused;
//   - LOADING: the server is loading its dataset;
//   - MASTERDOWN: a replica whose link to its primary is down, with
//     replica-serve-stale-data no;
//   - BUSY: a script or function is running past busy-reply-threshold;
//   - MISCONF: stop-writes-on-bgsave-error after a failed save;
//   - NOREPLICAS: fewer good replicas than min-replicas-to-write;
//   - MOVED, ASK, TRYAGAIN, CLUSTERDOWN, CROSSSLOT: Redis Cluster
//     redirections and refusals, decided before the command runs.
//
// Inside the cas script these refusals come from its redis.call of GET or
// of the write itself, its last command: Redis does not roll a script
// back, but a script that fails at or before its only write has written
// nothing.
var definiteCodes = map[string]bool{
	"READONLY": true, "NOSCRIPT": true, "WRONGTYPE": true,
	"NOAUTH": true, "WRONGPASS": true, "NOPERM": true,
	"OOM": true, "LOADING": true, "MASTERDOWN": true, "BUSY": true,
	"MISCONF": true, "NOREPLICAS": true,
	"MOVED": true, "ASK": true, "TRYAGAIN": true, "CLUSTERDOWN": true, "CROSSSLOT": true,
}

// definiteTexts are error replies, after the code ERR, that certainly
// mean "not executed".
var definiteTexts = []string{
	"unknown command", // the server does not have the command (EVALSHA on a proxy that lacks it, say)
}

// replyOf returns the server's error reply in err, if err holds one.
func replyOf(err error) (string, bool) {
	var re redis.Error
	if !errors.As(err, &re) {
		return "", false
	}
	return re.Error(), true
}

// isDefinite reports whether a write that failed with err, once its
// command may have been sent, certainly had no effect: only an error
// reply in the tables above. When unsure it says no: the outcome is then
// info.
func isDefinite(err error) bool {
	msg, ok := replyOf(err)
	if !ok {
		return false
	}
	code, rest, _ := strings.Cut(msg, " ")
	if code == "ERR" {
		for _, text := range definiteTexts {
			if strings.HasPrefix(rest, text) {
				return true
			}
		}
	}
	return definiteCodes[code]
}

// classify maps the error of an operation f to its outcome type and error
// text. sent says whether its command may have been written
// (connTracker); notSent says why not.
//
//   - a get is fail, whatever happened: a read has no effect;
//   - a write whose command was certainly not written is fail;
//   - a write the server refused in a way that certainly left the data
//     unchanged (isDefinite) is fail;
//   - any other failed write is info: a timeout (the op's deadline, a
//     read deadline), a connection closed or reset once the command may
//     have been written, an error reply not in the tables, anything
//     unknown.
func classify(f string, err error, sent bool, notSent func() string) (history.Type, string) {
	text := describe(err)
	switch {
	case !sent:
		reason := notSent()
		if r, ok := strings.CutPrefix(reason, "no connection: "); ok && strings.Contains(text, r) {
			reason = "no connection" // the text says why
		}
		return history.Fail, text + " (not sent: " + reason + ")"
	case f == fGet:
		return history.Fail, text
	case isDefinite(err):
		return history.Fail, text
	}
	return history.Info, text
}

// describe returns a short error text, starting "redis: ": "redis:
// timeout", "redis: READONLY You can't write against a read only
// replica.", "redis: connection closed (EOF)", "redis: dial tcp
// 127.0.0.1:6379: connect: connection refused". go-redis's error texts
// hold no credential (a refused AUTH is the server's WRONGPASS reply,
// which does not echo the password); Client.Do redacts the password from
// the text all the same.
func describe(err error) string {
	if msg, ok := replyOf(err); ok {
		text := err.Error()
		if !strings.Contains(text, msg) {
			text = msg
		}
		return "redis: " + kvadapter.Shorten(strings.TrimPrefix(text, "redis: "), 200)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "redis: timeout"
	case errors.Is(err, context.Canceled):
		return "redis: canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "redis: connection closed (EOF)"
	}
	return "redis: " + kvadapter.Shorten(strings.TrimPrefix(err.Error(), "redis: "), 200)
}
