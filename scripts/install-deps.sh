#!/usr/bin/env bash
# Installs everything vigil needs to build and test on Debian 12. Idempotent; safe to re-run.
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   also the test peers (gdb, clang for sanitizers/fuzzing,
#                                    Azurite and s3rver from npm; wrk for bench/scale)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

pkgs=(build-essential cmake pkg-config libuv1-dev libyaml-dev libsqlite3-dev libcurl4-openssl-dev
      libssl-dev libjansson-dev libcmocka-dev node-llhttp zlib1g-dev libzstd-dev
      libwebsockets-dev)
if ((want_test)); then
  pkgs+=(gdb clang libclang-rt-14-dev curl sqlite3 nodejs npm procps util-linux python3 zstd
        prometheus openjdk-17-jdk-headless visualvm iproute2
        systemd python3-yaml python3-kubernetes debootstrap
        wrk) # wrk: bench/scale's scrape storm
  # kubectl: Debian's kubernetes-client, unless a kubectl is already installed (another package
  # shipping /usr/bin/kubectl would conflict with it)
  command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. NodeSource); accept working binaries.
if ((want_test)) && command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests only need promtool from the prometheus package: keep its server from being started
  # by the install (invoke-rc.d and deb-systemd-invoke honour policy-rc.d).
  policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || { rc=$?; [[ -n "$policy" ]] && rm -f "$policy"; exit $rc; }
  [[ -n "$policy" ]] && rm -f "$policy"
fi

if ((want_test)) && [[ -f "$here/tests/servers/package.json" ]]; then
  if [[ ! -d "$here/tests/servers/node_modules" ]] || \
     [[ "$here/tests/servers/package.json" -nt "$here/tests/servers/node_modules" ]]; then
    echo "install-deps: installing test servers (npm)"
    (cd "$here/tests/servers" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
fi
echo "install-deps: ok"
