#!/bin/sh
# A 3-node raftkv cluster started by hand with `faultline node`, with the
# follower-read bug switched on, for examples/http-external.yaml: a service
# of your own that speaks faultline's HTTP node protocol looks the same.
#
#   sh examples/external/raftkv-cluster.sh start DIR [C1 C2 C3 A1 A2 A3 R1 R2 R3]
#       starts n1..n3 (client ports C, admin ports A, raft ports R;
#       default 24791-24793, 24801-24803, 24811-24813) with data and logs
#       in DIR, waits until each answers, and prints the export lines for
#       the example (RAFT_1..RAFT_3). FAULTLINE names the binary
#       (default: faultline in PATH); RAFT_BUG the bug switch (default
#       follower-read; RAFT_BUG= starts a correct cluster).
#   sh examples/external/raftkv-cluster.sh stop DIR
set -eu
cmd=${1:?usage: raftkv-cluster.sh start|stop DIR ...}
dir=${2:?usage: raftkv-cluster.sh start|stop DIR ...}
. "$(dirname "$0")/members.sh"
if [ "$cmd" = stop ]; then
  stop_members "$dir"
  exit 0
fi
[ "$cmd" = start ] || { echo "raftkv-cluster.sh: unknown command $cmd" >&2; exit 64; }
bin=${FAULTLINE:-faultline}
bug=${RAFT_BUG-follower-read}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
c1=${3:-24791} c2=${4:-24792} c3=${5:-24793}
a1=${6:-24801} a2=${7:-24802} a3=${8:-24803}
r1=${9:-24811} r2=${10:-24812} r3=${11:-24813}
start() { # id client admin raft peer1 peer2
  nohup "$bin" node --system raftkv --id "$1" --listen "127.0.0.1:$2" --admin "127.0.0.1:$3" \
    --peer-listen "127.0.0.1:$4" --peer "$5" --peer "$6" --data "$dir/$1" ${bug:+--bug "$bug"} \
    >> "$dir/$1.log" 2>&1 &
  echo $! > "$dir/$1.pid"
}
start n1 "$c1" "$a1" "$r1" "n2=127.0.0.1:$r2" "n3=127.0.0.1:$r3"
start n2 "$c2" "$a2" "$r2" "n1=127.0.0.1:$r1" "n3=127.0.0.1:$r3"
start n3 "$c3" "$a3" "$r3" "n1=127.0.0.1:$r1" "n2=127.0.0.1:$r2"
for a in "$a1" "$a2" "$a3"; do
  wait_for "node on admin port $a" curl -fsS -m 1 "http://127.0.0.1:$a/admin/status"
done
echo "export RAFT_1=127.0.0.1:$c1 RAFT_2=127.0.0.1:$c2 RAFT_3=127.0.0.1:$c3 RAFT_ADMIN_1=127.0.0.1:$a1 RAFT_ADMIN_2=127.0.0.1:$a2 RAFT_ADMIN_3=127.0.0.1:$a3"
