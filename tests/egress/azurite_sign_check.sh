#!/bin/sh
# Runs azurite_sign_check against the Azurite of the egress_servers fixture (tests/egress/servers.sh,
# its port in BUILD_DIR/egress-servers/ports.env). Exits 77 (skipped) when the fixture could not
# start the servers here (node missing).
# usage: azurite_sign_check.sh BUILD_DIR <azurite_sign_check binary>
set -eu
ports="$1/egress-servers/ports.env"
[ -f "$ports" ] || { echo "SKIP: the egress servers are not running (see egress_servers_start)"; exit 77; }
. "$ports"
exec "$2" "http://127.0.0.1:$AZ_PORT"
