#!/usr/bin/env bash
# Egress throughput and memory: one artifact (default 1 GiB, a file of random bytes) to each
# provider through the egress API (tests/egress/egress_driver: vg_artifact_open/write/commit,
# 1 MiB writes, compression off), against the raw-upload floor of the same run: curl PUTting the
# same file to the same server (s3rver, Azurite: one request, no signing, no spool), and dd of
# the file with fsync for the filesystem. For S3 and Azure also the multipart floor: curl sending
# the file as vigil's parts (8 MiB S3 parts / 4 MiB Azure blocks, 4 at once, unsigned) and
# completing them (CompleteMultipartUpload / Put Block List), which is what any resumable
# upload pays the server. Each set runs REPS times, alternating; medians. The ratios (floor time
# / vigil time, i.e. vigil's share of the floor's throughput) are what counts: all share the
# machine and its noise. Peak RSS of the driver from /usr/bin/time. The driver gets the
# providers' default Timeout (60 s without progress): s3rver's CompleteMultipartUpload of 1 GiB
# may be silent for longer than the driver's own 10 s default.
# Row s3-1put: the same S3 upload with CopyBufferSize (the part size) above the artifact's size,
# so vigil sends it in one PUT as curl does: what is left between vigil and the raw floor once
# the server's multipart cost is out of the picture.
#   bench/egress/run.sh BUILD_DIR [SIZE_MIB] [REPS]   (PROVIDERS="fs s3" to run only some)
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
mkdir -p "$work/s3parts" "$work/azparts"
split -b $((8 << 20)) -d -a 5 "$src" "$work/s3parts/p"
split -b $((4 << 20)) -d -a 5 "$src" "$work/azparts/p"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

raw() { # PROVIDER: the floor
  case $1 in
    fs) dd if="$src" of="$work/out/raw.bin" bs=4M conv=fsync status=none; rm -f "$work/out/raw.bin" ;;
    s3*) curl -sf -o /dev/null -T "$src" "$S3/vigil/raw.bin"
        curl -sf -o /dev/null -X DELETE "$S3/vigil/raw.bin" ;;
    azure) curl -sf -o /dev/null -T "$src" -H "x-ms-blob-type: BlockBlob" "$AZ/vigil/raw.bin?$SAS"
           curl -sf -o /dev/null -X DELETE "$AZ/vigil/raw.bin?$SAS" ;;
  esac
}

multipart() { # PROVIDER: the file as vigil's parts, 4 at once, then completed
  local p=$1 id n
  case $p in
    s3)
      id=$(curl -sf -X POST "$S3/vigil/rawmp.bin?uploads" | sed -n 's/.*<UploadId>\([^<]*\).*/\1/p')
      ls "$work/s3parts" | grep -v '\.h$' | awk '{print NR, $1}' |
        xargs -P4 -n2 sh -c 'curl -sf -o /dev/null -D "$0/$3.h" -T "$0/$3" "$1&partNumber=$2"' \
          "$work/s3parts" "$S3/vigil/rawmp.bin?uploadId=$id"
      { echo "<CompleteMultipartUpload>"
        n=0
        for f in $(ls "$work/s3parts" | grep -v '\.h$'); do
          n=$((n + 1))
          printf "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" $n \
            "$(tr -d '\r' < "$work/s3parts/$f.h" | awk 'tolower($1)=="etag:" {print $2}')"
        done
        echo "</CompleteMultipartUpload>"; } > "$work/complete.xml"
      curl -sf -o /dev/null -X POST --data-binary @"$work/complete.xml" "$S3/vigil/rawmp.bin?uploadId=$id"
      curl -sf -o /dev/null -X DELETE "$S3/vigil/rawmp.bin" ;;
    azure)
      ls "$work/azparts" | awk '{print NR, $1}' |
        xargs -P4 -n2 sh -c 'curl -sf -o /dev/null -T "$0/$3" "$1&comp=block&blockid=$(printf blk-%08d "$2" | base64)"' \
          "$work/azparts" "$AZ/vigil/rawmp.bin?$SAS"
      { echo '<?xml version="1.0" encoding="utf-8"?><BlockList>'
        n=$(ls "$work/azparts" | wc -l)
        for i in $(seq 1 "$n"); do printf "<Latest>%s</Latest>" "$(printf blk-%08d "$i" | base64)"; done
        echo "</BlockList>"; } > "$work/blocklist.xml"
      curl -sf -o /dev/null -X PUT --data-binary @"$work/blocklist.xml" "$AZ/vigil/rawmp.bin?comp=blocklist&$SAS"
      curl -sf -o /dev/null -X DELETE "$AZ/vigil/rawmp.bin?$SAS" ;;
  esac
}

vigil() { # PROVIDER RUN: one artifact through the egress API; checks the stored size
  local p=$1 name="bench-$1-$2.bin" args got
  case $p in
    fs) args="--kind fs --dir $work/out" ;;
    s3) args="--kind s3 --endpoint $S3 --bucket vigil --path-style --access-key S3RVER --secret-key S3RVER" ;;
    s3-1put) args="--kind s3 --endpoint $S3 --bucket vigil --path-style --access-key S3RVER --secret-key S3RVER --part-size $((bytes + 1))" ;;
    azure) args="--kind azure --account-uri $AZ --container vigil --account-key $KEY" ;;
  esac
  /usr/bin/time -v -o "$work/time" "$D" --state "$work/state" --spool "$work/spool" $args --timeout-ms 60000 \
    --chunk 1048576 --name "$name" put "$src" > /dev/null 2> "$work/log" ||
    { cat "$work/log" >&2; exit 1; }
  awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time" >> "$work/rss.$p"
  case $p in
    fs) got=$(stat -c %s "$work/out/$name"); rm -f "$work/out/$name" ;;
    s3*) got=$(curl -sfI "$S3/vigil/$name" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')
        curl -sf -o /dev/null -X DELETE "$S3/vigil/$name" ;;
    azure) got=$(curl -sfI "$AZ/vigil/$name?$SAS" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')
           curl -sf -o /dev/null -X DELETE "$AZ/vigil/$name?$SAS" ;;
  esac
  [[ "$got" == "$bytes" ]] || { echo "$p: stored $got bytes, expected $bytes" >&2; exit 1; }
}

printf "| provider | raw floor | multipart floor | vigil | vigil / raw | vigil / multipart | peak RSS (max of %d) |\n" "$reps"
printf "|---|---|---|---|---|---|---|\n"
mbs() { echo "$bytes / $1 / 1000000" | bc -l; }
for p in ${PROVIDERS:-fs s3 s3-1put azure}; do
  : > "$work/raw.$p"; : > "$work/mp.$p"; : > "$work/vig.$p"; : > "$work/rss.$p"
  for i in $(seq 1 "$reps"); do
    t0=$(now); raw $p; t1=$(now); vigil $p "$i"; t2=$(now)
    echo "$t1 - $t0" | bc >> "$work/raw.$p"
    echo "$t2 - $t1" | bc >> "$work/vig.$p"
    if [[ $p == s3 || $p == azure ]]; then
      t0=$(now); multipart $p; t1=$(now); echo "$t1 - $t0" | bc >> "$work/mp.$p"
    fi
  done
  r=$(median < "$work/raw.$p"); v=$(median < "$work/vig.$p")
  rss=$(sort -n "$work/rss.$p" | tail -1)
  if [[ $p != s3 && $p != azure ]]; then
    mpcol="-"; mpratio="-"
  else
    m=$(median < "$work/mp.$p")
    mpcol=$(printf "%.0f MB/s (%.2f s)" "$(mbs "$m")" "$m")
    mpratio=$(printf "%.2f" "$(echo "$m / $v" | bc -l)")
  fi
  printf "| %s | %.0f MB/s (%.2f s) | %s | %.0f MB/s (%.2f s) | %.2f | %s | %.1f MB |\n" "$p" \
    "$(mbs "$r")" "$r" "$mpcol" "$(mbs "$v")" "$v" "$(echo "$r / $v" | bc -l)" "$mpratio" \
    "$(echo "$rss / 1024" | bc -l)"
done
uptime
