# Shared by etcd-cluster.sh and raftkv-cluster.sh (sourced, not run):
# the members of a hand-started cluster are n1..n3, each with DIR/ID.pid.

# stop_members DIR: SIGTERM every member, and return once all are gone
# (their ports free again), SIGKILL after 10 s.
stop_members() {
  for id in n1 n2 n3; do
    [ -f "$1/$id.pid" ] && kill "$(cat "$1/$id.pid")" 2>/dev/null || true
  done
  for id in n1 n2 n3; do
    i=0
    while [ -f "$1/$id.pid" ] && kill -0 "$(cat "$1/$id.pid")" 2>/dev/null; do
      i=$((i+1)); [ $i -lt 100 ] || { kill -9 "$(cat "$1/$id.pid")" 2>/dev/null; break; }
      sleep 0.1
    done
  done
}

# wait_for WHAT CMD...: run CMD every 0.1 s until it succeeds; after 15 s
# say WHAT is not ready and fail.
wait_for() {
  what=$1; shift
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i+1)); [ $i -lt 150 ] || { echo "$what not ready after 15 s" >&2; return 1; }
    sleep 0.1
  done
}
