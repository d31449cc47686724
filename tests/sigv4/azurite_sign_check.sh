#!/bin/sh
# Starts Azurite's blob service on a free loopback port and runs azurite_sign_check against it.
# usage: azurite_sign_check.sh <azurite-blob> <azurite_sign_check binary>
set -eu
AZURITE=$1
CHECK=$2
DIR=$(mktemp -d "${TMPDIR:-/tmp}/vg-azurite-sign.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AZURITE" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DIR" --silent --skipApiVersionCheck \
    >"$DIR/azurite.out" 2>&1 &
AZ_PID=$!
cleanup() {
    kill "$AZ_PID" 2>/dev/null || true
    wait "$AZ_PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
i=0
until curl -s -o /dev/null "http://127.0.0.1:$PORT/devstoreaccount1?comp=list"; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$AZ_PID" 2>/dev/null; then
        echo "azurite did not start:" >&2
        cat "$DIR/azurite.out" >&2
        exit 1
    fi
    sleep 0.2
done
"$CHECK" "http://127.0.0.1:$PORT"
