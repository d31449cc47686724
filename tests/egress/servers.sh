#!/usr/bin/env bash
# CTest fixture: starts / stops Azurite (blob) and s3rver on loopback for the egress tests.
#   servers.sh start|stop BUILD_DIR
# Ports: Azurite 10400, s3rver 10401 (127.0.0.1). Data under BUILD_DIR/egress-servers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../servers/node_modules/.bin"
root="$2/egress-servers"
AZ_PORT=10400
S3_PORT=10401

wait_port() {
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "servers.sh: nothing listens on port $1" >&2
  return 1
}

stop_pid() {
  local f="$root/$1.pid"
  [[ -f "$f" ]] || return 0
  local pid; pid="$(cat "$f")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

case "$1" in
start)
  [[ -x "$bin/azurite-blob" && -x "$bin/s3rver" ]] || {
    echo "servers.sh: run scripts/install-deps.sh --test (npm ci in tests/servers)" >&2; exit 1; }
  stop_pid azurite; stop_pid s3rver
  rm -rf "$root"; mkdir -p "$root/azurite" "$root/s3"
  setsid "$bin/azurite-blob" --blobHost 127.0.0.1 --blobPort $AZ_PORT --location "$root/azurite" \
    --silent --disableTelemetry >"$root/azurite.log" 2>&1 < /dev/null &
  echo $! > "$root/azurite.pid"
  setsid "$bin/s3rver" -d "$root/s3" -a 127.0.0.1 -p $S3_PORT --silent \
    --configure-bucket vigil >"$root/s3rver.log" 2>&1 < /dev/null &
  echo $! > "$root/s3rver.pid"
  wait_port $AZ_PORT
  wait_port $S3_PORT
  python3 "$here/azhelper.py" mkcontainer "http://127.0.0.1:$AZ_PORT/devstoreaccount1" vigil
  ;;
stop)
  stop_pid azurite; stop_pid s3rver
  ;;
*)
  echo "usage: servers.sh start|stop BUILD_DIR" >&2; exit 2 ;;
esac
