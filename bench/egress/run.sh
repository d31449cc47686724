#!/usr/bin/env bash
# Egress throughput and memory: one artifact (default 1 GiB, a file of random bytes) to each
# provider through the egress API (tests/egress/egress_driver: vg_artifact_open/write/commit,
# 1 MiB writes, compression off), against the raw-upload floor of the same run: curl PUTting the
# same file to the same server (s3rver, Azurite: one request, no signing, no spool), and dd of
# the file with fsync for the filesystem. Each pair runs REPS times, raw and vigil alternating;
# medians. The ratio (raw time / vigil time, i.e. vigil's share of the raw throughput) is what
# counts: both sides share the machine and its noise. Peak RSS of the driver from /usr/bin/time.
#   bench/egress/run.sh BUILD_DIR [SIZE_MIB] [REPS]
# Starts its own Azurite and s3rver (tests/egress/servers.sh, free ports) under BUILD/egress-bench.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"
size_mib="${2:-1024}"
reps="${3:-3}"
D="$build/tests/egress/egress_driver"
work="$build/egress-bench"
rm -rf "$work"; mkdir -p "$work/out"
"$here/../../tests/egress/servers.sh" start "$work" > /dev/null
trap '"$here/../../tests/egress/servers.sh" stop "$work" > /dev/null; rm -rf "$work"' EXIT
source "$work/egress-servers/ports.env"
S3=http://127.0.0.1:$S3_PORT
AZ=http://127.0.0.1:$AZ_PORT/devstoreaccount1
SAS="$(python3 "$here/../../tests/egress/azhelper.py" sas)"
KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
src="$work/src.bin"
head -c $((size_mib * 1048576)) /dev/urandom > "$src"
bytes=$((size_mib * 1048576))

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

raw() { # PROVIDER: the floor
  case $1 in
    fs) dd if="$src" of="$work/out/raw.bin" bs=4M conv=fsync status=none; rm -f "$work/out/raw.bin" ;;
    s3) curl -sf -o /dev/null -T "$src" "$S3/vigil/raw.bin"
        curl -sf -o /dev/null -X DELETE "$S3/vigil/raw.bin" ;;
    azure) curl -sf -o /dev/null -T "$src" -H "x-ms-blob-type: BlockBlob" "$AZ/vigil/raw.bin?$SAS"
           curl -sf -o /dev/null -X DELETE "$AZ/vigil/raw.bin?$SAS" ;;
  esac
}

vigil() { # PROVIDER RUN: one artifact through the egress API; checks the stored size
  local p=$1 name="bench-$1-$2.bin" args got
  case $p in
    fs) args="--kind fs --dir $work/out" ;;
    s3) args="--kind s3 --endpoint $S3 --bucket vigil --path-style --access-key S3RVER --secret-key S3RVER" ;;
    azure) args="--kind azure --account-uri $AZ --container vigil --account-key $KEY" ;;
  esac
  /usr/bin/time -v -o "$work/time" "$D" --state "$work/state" --spool "$work/spool" $args \
    --chunk 1048576 --name "$name" put "$src" > /dev/null 2> "$work/log" ||
    { cat "$work/log" >&2; exit 1; }
  awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time" >> "$work/rss.$p"
  case $p in
    fs) got=$(stat -c %s "$work/out/$name"); rm -f "$work/out/$name" ;;
    s3) got=$(curl -sfI "$S3/vigil/$name" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')
        curl -sf -o /dev/null -X DELETE "$S3/vigil/$name" ;;
    azure) got=$(curl -sfI "$AZ/vigil/$name?$SAS" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')
           curl -sf -o /dev/null -X DELETE "$AZ/vigil/$name?$SAS" ;;
  esac
  [[ "$got" == "$bytes" ]] || { echo "$p: stored $got bytes, expected $bytes" >&2; exit 1; }
}

printf "| provider | raw floor | vigil | vigil / raw | peak RSS (max of %d) |\n" "$reps"
printf "|---|---|---|---|---|\n"
for p in fs s3 azure; do
  : > "$work/raw.$p"; : > "$work/vig.$p"; : > "$work/rss.$p"
  for i in $(seq 1 "$reps"); do
    t0=$(now); raw $p; t1=$(now); vigil $p "$i"; t2=$(now)
    echo "$t1 - $t0" | bc >> "$work/raw.$p"
    echo "$t2 - $t1" | bc >> "$work/vig.$p"
  done
  r=$(median < "$work/raw.$p"); v=$(median < "$work/vig.$p")
  rss=$(sort -n "$work/rss.$p" | tail -1)
  printf "| %s | %.0f MB/s (%.2f s) | %.0f MB/s (%.2f s) | %.2f | %.1f MB |\n" "$p" \
    "$(echo "$bytes / $r / 1000000" | bc -l)" "$r" "$(echo "$bytes / $v / 1000000" | bc -l)" "$v" \
    "$(echo "$r / $v" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
done
