#!/bin/sh
# A 3-member etcd cluster (Debian's etcd 3.4: apt-get install etcd-server)
# that you run yourself, for examples/etcd-external.yaml.
#
#   sh examples/external/etcd-cluster.sh start DIR [C1 C2 C3 P1 P2 P3]
#       starts members n1..n3 with data, logs and pid files in DIR
#       (client ports C1..C3, peer ports P1..P3; default 23791-23793 and
#       23801-23803), waits until each is healthy, and prints the export
#       lines for the example (ETCD_1..ETCD_3, ETCD_CLUSTER_DIR).
#   sh DIR/ctl kill ID | start ID | status ID
#       what the example's hooks run: SIGKILL a member; start it again and
#       wait until it is healthy; check that it runs. With
#       FAULTLINE_DRY_RUN=1 (faultline's preflight) kill and start only
#       check that they could act.
#   sh examples/external/etcd-cluster.sh stop DIR
#       stops every member (the data stays in DIR).
set -eu
cmd=${1:?usage: etcd-cluster.sh start|stop DIR ...}
dir=${2:?usage: etcd-cluster.sh start|stop DIR ...}

. "$(dirname "$0")/members.sh"
if [ "$cmd" = stop ]; then
  stop_members "$dir"
  exit 0
fi
[ "$cmd" = start ] || { echo "etcd-cluster.sh: unknown command $cmd" >&2; exit 64; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
c1=${3:-23791} c2=${4:-23792} c3=${5:-23793} p1=${6:-23801} p2=${7:-23802} p3=${8:-23803}
cluster="n1=http://127.0.0.1:$p1,n2=http://127.0.0.1:$p2,n3=http://127.0.0.1:$p3"
for m in "n1 $c1 $p1" "n2 $c2 $p2" "n3 $c3 $p3"; do
  set -- $m
  cat > "$dir/$1.cmd" <<CMD
exec etcd --name=$1 --data-dir="$dir/$1.data" \
  --listen-client-urls=http://127.0.0.1:$2 --advertise-client-urls=http://127.0.0.1:$2 \
  --listen-peer-urls=http://127.0.0.1:$3 --initial-advertise-peer-urls=http://127.0.0.1:$3 \
  --initial-cluster=$cluster --initial-cluster-state=new --initial-cluster-token=external \
  --pre-vote --logger=zap
CMD
  echo "$2" > "$dir/$1.port"
done

cat > "$dir/ctl" <<'CTL'
#!/bin/sh
# Hooks of examples/etcd-external.yaml: kill ID | start ID | status ID.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
verb=${1:?usage: ctl kill|start|status ID}
id=${2:?usage: ctl kill|start|status ID}
[ -f "$dir/$id.cmd" ] || { echo "no member $id in $dir" >&2; exit 2; }
running() { [ -f "$dir/$id.pid" ] && kill -0 "$(cat "$dir/$id.pid")" 2>/dev/null; }
healthy() { curl -fsS -m 1 "http://127.0.0.1:$(cat "$dir/$id.port")/health" 2>/dev/null | grep -q '"health":"true"'; }
case $verb in
status) running ;;
kill)
  running || { echo "member $id is not running" >&2; exit 1; }
  [ "${FAULTLINE_DRY_RUN:-}" = 1 ] && exit 0
  kill -9 "$(cat "$dir/$id.pid")" ;;
start)
  command -v etcd >/dev/null || { echo "etcd is not installed" >&2; exit 1; }
  [ "${FAULTLINE_DRY_RUN:-}" = 1 ] && exit 0
  if ! running; then
    nohup sh "$dir/$id.cmd" >> "$dir/$id.log" 2>&1 &
    echo $! > "$dir/$id.pid"
  fi
  i=0
  until healthy; do
    i=$((i+1)); [ $i -lt 150 ] || { echo "member $id not healthy after 15 s" >&2; exit 1; }
    sleep 0.1
  done ;;
*) echo "ctl: unknown verb $verb" >&2; exit 64 ;;
esac
CTL

for id in n1 n2 n3; do
  nohup sh "$dir/$id.cmd" >> "$dir/$id.log" 2>&1 &
  echo $! > "$dir/$id.pid"
done
for id in n1 n2 n3; do sh "$dir/ctl" start "$id"; done
echo "export ETCD_1=127.0.0.1:$c1 ETCD_2=127.0.0.1:$c2 ETCD_3=127.0.0.1:$c3 ETCD_CLUSTER_DIR=$dir"
