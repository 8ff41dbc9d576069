#!/usr/bin/env bash
# A fleet on loopback, as processes: one redis-server and N Tailgate replicas
# sharing state through it (the topology of tools/deploy/, without
# containers). The e2e tests (tests/e2e/test_fleet*.py) run it.
#
#   tools/scripts/fleet.sh --config FILE [--replicas 3] [--dir DIR] [--redis-port 0] [--build build]
#
# The config names Redis through the environment this script sets, e.g.
#   router_settings: {redis_url: os.environ/TAILGATE_REDIS_URL}
#   shared_state:    {replica_id: os.environ/TAILGATE_REPLICA_ID}
# Each replica gets TAILGATE_REDIS_URL, TAILGATE_REPLICA_ID=replica-<i> and a
# state directory DIR/replica-<i>. Ports are picked by the OS (--port 0);
# once everything listens the script prints, one line each,
#   redis 127.0.0.1:<port> pid <pid>
#   replica replica-<i> 127.0.0.1:<port> pid <pid>
#   fleet ready
# and waits; SIGTERM/SIGINT (or Ctrl-C) stops the replicas, then Redis.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

CONFIG="" REPLICAS=3 DIR="" REDIS_PORT=0 BUILD="${TAILGATE_BUILD_DIR:-$ROOT/build}"
while (($#)); do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --replicas) REPLICAS="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --redis-port) REDIS_PORT="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "fleet.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$CONFIG" ] || { echo "fleet.sh: --config FILE is required" >&2; exit 2; }
[ -x "$BUILD/bin/tailgate" ] || { echo "fleet.sh: $BUILD/bin/tailgate not built" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "fleet.sh: redis-server not installed (apt-get install redis-server)" >&2; exit 2; }
DIR="${DIR:-$(mktemp -d /tmp/tailgate-fleet-XXXXXX)}"
mkdir -p "$DIR"

pids=()
stop_all() {
  trap - TERM INT EXIT
  # Replicas first (they drain), then Redis.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop_all; exit 0' TERM INT
trap stop_all EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits for "listening on HOST:PORT" in a log file; prints the port.
wait_listening() {
  local log="$1" pid="$2"
  for _ in $(seq 1 200); do
    if grep -qE '^listening on ' "$log" 2>/dev/null; then
      grep -m1 -oE '[0-9]+$' <(grep -m1 -E '^listening on ' "$log"); return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "fleet.sh: process $pid exited; see $log" >&2; return 1; }
    sleep 0.05
  done
  echo "fleet.sh: no 'listening on' in $log after 10 s" >&2; return 1
}

[ "$REDIS_PORT" = 0 ] && REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile "$DIR/redis.log" &
pids+=($!)
redis_pid=$!
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  kill -0 "$redis_pid" 2>/dev/null || { echo "fleet.sh: redis-server exited; see $DIR/redis.log" >&2; exit 1; }
  sleep 0.05
done
echo "redis 127.0.0.1:$REDIS_PORT pid $redis_pid"

for ((i = 1; i <= REPLICAS; i++)); do
  name="replica-$i"
  mkdir -p "$DIR/$name"
  TAILGATE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" TAILGATE_REPLICA_ID="$name" \
    "$BUILD/bin/tailgate" --config "$CONFIG" --host 127.0.0.1 --port 0 --state-dir "$DIR/$name" \
    >"$DIR/$name.out" 2>"$DIR/$name.log" &
  pid=$!
  pids+=("$pid")
  port="$(wait_listening "$DIR/$name.out" "$pid")"
  echo "replica $name 127.0.0.1:$port pid $pid"
done
echo "fleet ready"
wait
