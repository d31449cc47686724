#!/usr/bin/env bash
# Egress memory benchmark: uploads one artifact (default 2 GiB, streamed from /dev/urandom into
# the driver's stdin, never held in RAM) to each provider and reports the driver's peak RSS
# (/usr/bin/time -v) and throughput. Memory must stay flat (<= 64 MB) whatever the size.
#   bench/egress/run.sh BUILD_DIR [SIZE_MIB]
# Starts its own Azurite and s3rver through tests/egress/servers.sh (ports 10400/10401).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"
size_mib="${2:-2048}"
D="$build/tests/egress/egress_driver"
work="$build/egress-bench"
rm -rf "$work"; mkdir -p "$work"
"$here/../../tests/egress/servers.sh" start "$build"
trap '"$here/../../tests/egress/servers.sh" stop "$build"; rm -rf "$work"' EXIT
SAS="$(python3 "$here/../../tests/egress/azhelper.py" sas)"
KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==

printf "| provider | size | peak RSS | wall time | throughput |\n|---|---|---|---|---|\n"
for p in fs s3 azure; do
  case $p in
    fs) args="--kind fs --dir $work/out" ;;
    s3) args="--kind s3 --endpoint http://127.0.0.1:10401 --bucket vigil --path-style --access-key S3RVER --secret-key S3RVER" ;;
    azure) args="--kind azure --account-uri http://127.0.0.1:10400/devstoreaccount1 --container vigil --account-key $KEY" ;;
  esac
  start=$(date +%s.%N)
  head -c $((size_mib * 1048576)) /dev/urandom |
    /usr/bin/time -v -o "$work/time.$p" "$D" --state "$work/state" --spool "$work/spool" $args \
      --chunk 1048576 --name "bench-$p.bin" put - > /dev/null 2> "$work/log.$p" ||
    { cat "$work/log.$p" >&2; exit 1; }
  end=$(date +%s.%N)
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$p")
  # check the stored size, then free the disk for the next provider
  case $p in
    fs) got=$(stat -c %s "$work/out/bench-fs.bin"); rm -f "$work/out/bench-fs.bin" ;;
    s3) got=$(curl -sfI "http://127.0.0.1:10401/vigil/bench-s3.bin" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}') ;;
    azure) got=$(curl -sfI "http://127.0.0.1:10400/devstoreaccount1/vigil/bench-azure.bin?$SAS" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}') ;;
  esac
  [[ "$got" == $((size_mib * 1048576)) ]] || { echo "$p: stored $got bytes" >&2; exit 1; }
  secs=$(echo "$end - $start" | bc)
  printf "| %s | %d MiB | %.1f MB | %.1f s | %.0f MB/s |\n" "$p" "$size_mib" \
    "$(echo "$rss_kb / 1024" | bc -l)" "$secs" "$(echo "$size_mib * 1.048576 / $secs" | bc -l)"
done
