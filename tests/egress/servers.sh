#!/usr/bin/env bash
# CTest fixture: starts / stops Azurite (blob) and s3rver on loopback for the egress tests.
#   servers.sh start|stop BUILD_DIR
# Ports: free loopback ports chosen at start, written to BUILD_DIR/egress-servers/ports.env
# (AZ_PORT=, S3_PORT=) for the tests to source, so two suites on one machine never collide.
# Data under BUILD_DIR/egress-servers. Without node, start exits 77 (skipped) and writes no
# ports.env: the tests that need the servers then skip too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../servers/node_modules/.bin"
root="$2/egress-servers"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 600); do # up to a minute: a loaded CI machine starts node slowly
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
  rm -f "$root/ports.env" # the tests skip (exit 77) when there is none
  command -v node >/dev/null || { echo "SKIP: node not found: Azurite and s3rver cannot run"; exit 77; }
  [[ -x "$bin/azurite-blob" && -x "$bin/s3rver" ]] || {
    echo "servers.sh: run scripts/install-deps.sh --test (npm ci in tests/servers)" >&2; exit 1; }
  stop_pid azurite; stop_pid s3rver
  rm -rf "$root"; mkdir -p "$root/azurite" "$root/s3"
  AZ_PORT=$(free_port); S3_PORT=$(free_port)
  while [[ "$S3_PORT" == "$AZ_PORT" ]]; do S3_PORT=$(free_port); done
  printf 'AZ_PORT=%s\nS3_PORT=%s\n' "$AZ_PORT" "$S3_PORT" >"$root/ports.env"
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
  rm -rf "$root/azurite" "$root/s3" # stored test objects (hundreds of MB); logs stay
  ;;
*)
  echo "usage: servers.sh start|stop BUILD_DIR" >&2; exit 2 ;;
esac
