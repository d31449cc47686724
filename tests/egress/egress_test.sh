#!/usr/bin/env bash
# Egress integration tests against real servers (Azurite and s3rver on the free ports servers.sh
# chose, read from BUILD_DIR/egress-servers/ports.env).
#   egress_test.sh CASE BUILD_DIR
# Every case checks the stored bytes by reading them back with curl, and that exactly one object
# with the name exists. Fault cases put faultproxy.py (or a killed server) in the path.
set -euo pipefail
case_="$1"; build="$2"
here="$(cd "$(dirname "$0")" && pwd)"
D="$build/tests/egress/egress_driver"
work="$build/egress-tests/$case_"
rm -rf "$work"; mkdir -p "$work"
cd "$work"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
AZ_PORT=0; S3_PORT=0
if [[ -f "$build/egress-servers/ports.env" ]]; then
  source "$build/egress-servers/ports.env"
elif [[ $case_ != sizes-fs && $case_ != web-identity ]]; then
  echo "SKIP: the egress servers are not running (see egress_servers_start)"; exit 77
fi
AZ_URI=http://127.0.0.1:$AZ_PORT/devstoreaccount1
S3_URL=http://127.0.0.1:$S3_PORT
SAS="$(python3 "$here/azhelper.py" sas)"
KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
MIB=1048576
RUN="$case_-$$-$RANDOM" # unique object names per run
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
s3args() { echo "--kind s3 --endpoint ${1:-$S3_URL} --bucket vigil --path-style --access-key S3RVER --secret-key S3RVER --part-size $((5*MIB))"; }
azargs() { echo "--kind azure --account-uri ${1:-$AZ_URI} --container vigil"; }
common="--state $work/state --spool $work/spool --max-delay-ms 1000"

# url_of PROVIDER NAME -> a URL curl can GET
url_of() {
  case "$1" in
    s3) echo "$S3_URL/vigil/$2" ;;
    azure*) echo "$AZ_URI/vigil/$2?$SAS" ;;
    fs) echo "file://$work/out/$2" ;;
  esac
}
count_objects() { # PROVIDER NAME -> number of objects with exactly that name
  case "$1" in
    s3) curl -sf "$S3_URL/vigil?prefix=$2" | grep -o "<Key>$2</Key>" | wc -l ;;
    azure*) curl -sf "$AZ_URI/vigil?restype=container&comp=list&prefix=$2&$SAS" | grep -o "<Name>$2</Name>" | wc -l ;;
    fs) ls "$work/out" | grep -cx "$2" ;;
  esac
}
# check PROVIDER NAME SHA SIZE
check() {
  local got size
  got="$(curl -sf "$(url_of "$1" "$2")" | sha256sum | cut -d' ' -f1)" || fail "$1 $2: cannot read back"
  [[ "$got" == "$3" ]] || fail "$1 $2: sha256 $got, expected $3"
  size="$(curl -sf "$(url_of "$1" "$2")" | wc -c)"
  [[ "$size" == "$4" ]] || fail "$1 $2: $size bytes, expected $4"
  [[ "$(count_objects "$1" "$2")" == 1 ]] || fail "$1 $2: not exactly one object"
  [[ -z "$(ls -A "$work/spool" 2>/dev/null)" ]] || fail "$1 $2: spool not empty: $(ls "$work/spool")"
}
pargs() { # PROVIDER -> driver flags
  case "$1" in
    s3) s3args ;;
    azure-sas) echo "$(azargs) --sas $SAS" ;;
    azure-key) echo "$(azargs) --account-key $KEY" ;;
    fs) echo "--kind fs --dir $work/out" ;;
  esac
}
# put PROVIDER NAME SIZE [extra driver flags...]: random data streamed into the driver's stdin
put() {
  local p="$1" name="$2" size="$3"; shift 3
  rm -f "$work/sha"
  head -c "$size" /dev/urandom | tee >(sha256sum | cut -d' ' -f1 > "$work/sha") |
    "$D" $common $(pargs "$p") --name "$name" "$@" put - > "$work/path" 2> "$work/log" ||
    { cat "$work/log" >&2; fail "$p $name: upload failed"; }
  # the sha256sum process substitution may finish after the pipeline
  for _ in $(seq 200); do grep -qxE '[0-9a-f]{64}' "$work/sha" 2>/dev/null && break; sleep 0.05; done
  check "$p" "$name" "$(cat "$work/sha")" "$size"
  echo "ok $p $name $size -> $(cat "$work/path" | sed 's/sig=[^&]*/sig=.../')"
}

start_proxy() { # PORT UPSTREAM_PORT [flags]
  local port="$1" up="$2"; shift 2
  python3 "$here/faultproxy.py" --port "$port" --upstream "127.0.0.1:$up" --log "$work/proxy.log" "$@" &
  pids+=($!)
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  fail "proxy on $port did not start"
}

case "$case_" in
sizes-fs|sizes-s3|sizes-azure-sas|sizes-azure-key)
  p="${case_#sizes-}"
  for size in 0 1 $((5*MIB-1)) $((5*MIB)) $((5*MIB+1)) $((11*MIB+7)); do
    put "$p" "$RUN-$size.bin" "$size"
  done
  if [[ "$p" != azure-key ]]; then put "$p" "$RUN-big.bin" $((200*MIB)); fi
  # more parts than one: the S3 multipart path was taken
  if [[ "$p" == s3 ]]; then
    sqlite3 "$work/state/vigil.db" "select count(*) from egress_parts p join egress_uploads u on u.id=p.upload_id where u.name='$RUN-big.bin'" | grep -qx 40 || fail "expected 40 parts"
  fi
  ;;
compression)
  for p in fs s3 azure-sas; do
    head -c $((3*MIB)) /dev/zero > "$work/zero.bin"
    for c in gzip zstd; do
      ext=$([[ $c == gzip ]] && echo gz || echo zst)
      "$D" $common $(pargs $p) --compression $c --name "$RUN.core" --content-type application/x-core --meta origin=test put "$work/zero.bin" > "$work/path" 2> "$work/log" || { cat "$work/log"; fail "$p $c"; }
      curl -sf "$(url_of $p "$RUN.core.$ext")" > "$work/got.$ext"
      if [[ $c == gzip ]]; then gzip -dc "$work/got.$ext" | cmp - "$work/zero.bin"; else zstd -qdc "$work/got.$ext" | cmp - "$work/zero.bin"; fi
      if [[ $p != fs ]]; then
        h="$(curl -sfI "$(url_of $p "$RUN.core.$ext")" | tr -d '\r' | tr 'A-Z' 'a-z')"
        grep -q "content-type: application/$([[ $c == gzip ]] && echo gzip || echo zstd)" <<<"$h" || fail "$p $c: content type: $h"
        grep -q "meta-vigilcontenttype: application/x-core" <<<"$h" || fail "$p $c: metadata: $h"
        grep -q "meta-origin: test" <<<"$h" || fail "$p $c: user metadata: $h"
      fi
      echo "ok $p $c"
    done
  done
  [[ "$(stat -c %a "$work/out/$RUN.core.gz")" == 600 ]] || fail "fs file mode"
  ;;
auth)
  # A wrong key is FATAL at once (VG_EAUTH, exit 4), never retried.
  head -c 100 /dev/urandom > "$work/x"
  set +e
  "$D" $common $(azargs) --account-key "${KEY/E/F}" --retries 5 --name "$RUN.bin" put "$work/x" 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 4 ]] || { cat "$work/log"; fail "azure wrong key: exit $rc, expected 4"; }
  grep -q "retries=0" "$work/log" || fail "azure wrong key was retried"
  grep -q "403" "$work/log" || fail "no HTTP status in the error"
  set +e
  "$D" $common $(azargs) --sas "${SAS/sig=/sig=AAAA}" --retries 5 --name "$RUN.bin" put "$work/x" 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 4 ]] || { cat "$work/log"; fail "azure wrong SAS: exit $rc, expected 4"; }
  set +e
  "$D" $common $(s3args | sed 's/--access-key S3RVER/--access-key NOPE/') --retries 5 --name "$RUN.bin" put "$work/x" 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 4 ]] || { cat "$work/log"; fail "s3 unknown key: exit $rc, expected 4"; }
  [[ "$(count_objects azure-sas "$RUN.bin")" == 0 ]] || fail "object exists after auth failure"
  [[ -z "$(ls -A "$work/spool")" ]] || fail "spool not empty after fatal errors"
  # web identity with an unreadable token file: fatal (exit 4), the file named
  set +e
  env -u AWS_ACCESS_KEY_ID AWS_WEB_IDENTITY_TOKEN_FILE=/nonexistent AWS_ROLE_ARN=arn:x \
    AWS_ENDPOINT_URL_STS=http://127.0.0.1:1 \
    "$D" $common --kind s3 --endpoint "$S3_URL" --bucket vigil --name "$RUN.bin" put "$work/x" 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 4 ]] && grep -q "AWS_WEB_IDENTITY_TOKEN_FILE /nonexistent" "$work/log" || { cat "$work/log"; fail "web identity"; }
  echo ok
  ;;
quota)
  set +e
  head -c $((3*MIB)) /dev/urandom | "$D" $common $(pargs s3) --quota $((2*MIB)) --name "$RUN.bin" put - 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 5 ]] || { cat "$work/log"; fail "exit $rc, expected 5 (VG_EQUOTA)"; }
  grep -q "Storage.SpoolQuota" "$work/log" || fail "no clear quota error"
  [[ -z "$(ls -A "$work/spool")" ]] || fail "spool not empty"
  [[ "$(count_objects s3 "$RUN.bin")" == 0 ]] || fail "partial object uploaded"
  # the same artifact fits under a larger quota
  put s3 "$RUN.bin" $((3*MIB)) --quota $((4*MIB))
  ;;
storm-503)
  # 503 + Retry-After four times, then the real server: one complete object, retries counted.
  px=$(free_port); start_proxy $px $S3_PORT --fail503 4
  put s3 "$RUN-s3.bin" $((12*MIB)) --endpoint http://127.0.0.1:$px
  grep -q "retries=4" "$work/log" || { cat "$work/log"; fail "expected 4 retries"; }
  # Retry-After: 1 beats the first backoff (250-500 ms): every wait is exactly 1000 ms
  [[ "$(grep -c 'in 1000 ms' "$work/log")" == 4 ]] || { cat "$work/log"; fail "Retry-After not honoured"; }
  px=$(free_port); start_proxy $px $AZ_PORT --fail503 4
  put azure-sas "$RUN-az.bin" $((12*MIB)) --account-uri http://127.0.0.1:$px/devstoreaccount1
  grep -q "retries=4" "$work/log" || { cat "$work/log"; fail "expected 4 retries"; }
  # a storm longer than MaxRetries: VG_ERETRY, left pending with its spool; resume completes it
  px=$(free_port); start_proxy $px $S3_PORT --fail503 100
  set +e
  head -c 1000 /dev/urandom > "$work/x"
  "$D" $common $(pargs s3) --endpoint http://127.0.0.1:$px --retries 2 --name "$RUN-x.bin" put "$work/x" 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 3 ]] || { cat "$work/log"; fail "exit $rc, expected 3 (VG_ERETRY)"; }
  [[ -n "$(ls -A "$work/spool")" ]] || fail "spool dropped although the upload is pending"
  "$D" $common $(pargs s3) resume 2> "$work/log" || { cat "$work/log"; fail resume; }
  check s3 "$RUN-x.bin" "$(sha256sum < "$work/x" | cut -d' ' -f1)" 1000
  echo "ok pending upload resumed"
  ;;
stall)
  # The first two requests are accepted and never answered: stall timeout, retry, success.
  px=$(free_port); start_proxy $px $S3_PORT --stall 2
  put s3 "$RUN-s3.bin" $((6*MIB)) --endpoint http://127.0.0.1:$px --timeout-ms 1500
  grep -q "retries=2" "$work/log" || { cat "$work/log"; fail "expected 2 retries"; }
  grep -qi "timed out\|timeout" "$work/log" || { cat "$work/log"; fail "no timeout reported"; }
  ;;
server-restart)
  # Our own s3rver, killed in the middle of a multipart upload and restarted 2 s later.
  s3dir="$work/s3data"; mkdir -p "$s3dir"
  own=$(free_port)
  start_s3() {
    "$here/../servers/node_modules/.bin/s3rver" -d "$s3dir" -a 127.0.0.1 -p $own --silent --configure-bucket vigil > "$work/s3rver.log" 2>&1 &
    s3pid=$!; pids+=($s3pid)
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$own) 2>/dev/null && return 0; sleep 0.1; done
    fail "s3rver did not start"
  }
  start_s3
  px=$(free_port); start_proxy $px $own --rate 8000000
  S3_URL=http://127.0.0.1:$own
  head -c $((30*MIB)) /dev/urandom > "$work/data"
  "$D" $common $(pargs s3) --endpoint http://127.0.0.1:$px --name "$RUN.bin" put "$work/data" > "$work/path" 2> "$work/log" &
  dpid=$!
  # killed once a part is stored, restarted once the driver has seen it gone and plans a retry
  for _ in $(seq 300); do
    [[ "$(sqlite3 "$work/state/vigil.db" "select count(*) from egress_parts" 2>/dev/null)" -ge 1 ]] && break
    sleep 0.05
  done
  kill -9 $s3pid
  for _ in $(seq 300); do grep -q "(retry " "$work/log" && break; sleep 0.05; done
  grep -q "(retry " "$work/log" || { cat "$work/log"; fail "no retry planned while s3rver was down"; }
  start_s3
  wait $dpid || { cat "$work/log"; fail "upload did not survive the server restart"; }
  grep -q "retries=0" "$work/log" && { cat "$work/log"; fail "no retry happened"; }
  check s3 "$RUN.bin" "$(sha256sum < "$work/data" | cut -d' ' -f1)" $((30*MIB))
  rm -f "$work/data"
  ;;
kill9-s3|kill9-azure|kill9-s3-aborted)
  # vigil's side is killed (-9) after two parts; a new process resumes from the third part.
  p=s3; up=$S3_PORT; port=$(free_port); over="--endpoint http://127.0.0.1:$port"
  if [[ $case_ == kill9-s3-aborted ]]; then
    # s3rver neither aborts nor forgets multipart uploads: moto_server (when installed) does.
    command -v moto_server > /dev/null || { echo "SKIP: moto_server not installed"; exit 77; }
    moto=$(free_port)
    moto_server -H 127.0.0.1 -p $moto > "$work/moto.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$moto/ && break; sleep 0.1; done
    curl -sf -X PUT http://127.0.0.1:$moto/vigil > /dev/null || fail "moto bucket"
    S3_URL=http://127.0.0.1:$moto; up=$moto; port=$(free_port); over="--endpoint http://127.0.0.1:$port"
  fi
  if [[ $case_ == kill9-azure ]]; then
    p=azure-key; up=$AZ_PORT; port=$(free_port); over="--account-uri http://127.0.0.1:$port/devstoreaccount1 --block-size $((5*MIB))"
  fi
  start_proxy $port $up --rate 6000000
  head -c $((30*MIB)) /dev/urandom > "$work/data"
  "$D" $common $(pargs $p) $over --name "$RUN.bin" put "$work/data" > /dev/null 2> "$work/log1" &
  dpid=$!
  for _ in $(seq 1 200); do
    n="$(sqlite3 "$work/state/vigil.db" "select count(*) from egress_parts" 2>/dev/null || echo 0)"
    [[ "$n" -ge 2 ]] && break
    sleep 0.05
  done
  kill -9 $dpid; wait $dpid 2>/dev/null || true
  [[ "$(sqlite3 "$work/state/vigil.db" "select state from egress_uploads")" == uploading ]] || fail "state after kill"
  [[ "$(count_objects $p "$RUN.bin")" == 0 ]] || fail "object visible before completion"
  extra=""; [[ $p == azure-key ]] && extra="--block-size $((5*MIB))"
  if [[ $case_ == kill9-s3-aborted ]]; then
    # the multipart upload vanished meanwhile (expired, or aborted by a lifecycle rule)
    id="$(sqlite3 "$work/state/vigil.db" "select remote_id from egress_uploads")"
    curl -sf -X DELETE "$S3_URL/vigil/$RUN.bin?uploadId=$id" > /dev/null || fail "abort"
    curl -s "$S3_URL/vigil/$RUN.bin?uploadId=$id" | grep -q NoSuchUpload || fail "upload still listed"
  fi
  "$D" $common $(pargs $p) $extra --debug resume 2> "$work/log2" || { cat "$work/log2"; fail resume; }
  if [[ $case_ == kill9-s3-aborted ]]; then
    grep -q "NoSuchUpload.*starting over" "$work/log2" || { cat "$work/log2"; fail "no restart"; }
  else
    grep -q "resuming at part [3-9]" "$work/log2" || { cat "$work/log2"; fail "did not resume from the recorded parts"; }
  fi
  [[ "$(sqlite3 "$work/state/vigil.db" "select state from egress_uploads")" == done ]] || fail "state after resume"
  check $p "$RUN.bin" "$(sha256sum < "$work/data" | cut -d' ' -f1)" $((30*MIB))
  # a second resume finds nothing to do
  "$D" $common $(pargs $p) resume 2> "$work/log3"
  grep -q "started=0" "$work/log3" || { cat "$work/log3"; fail "second resume did something"; }
  rm -f "$work/data"
  ;;
kill9-spooling)
  # Killed while the artifact was still being written: never uploaded, spool cleaned on resume.
  mkfifo "$work/fifo"
  "$D" $common $(pargs s3) --name "$RUN.bin" put "$work/fifo" > /dev/null 2> "$work/log1" &
  dpid=$!
  exec 7> "$work/fifo"
  head -c $((2*MIB)) /dev/urandom >&7
  # killed once the 2 MiB are in the spool, the fifo still open
  for _ in $(seq 1 200); do
    (($(find "$work/spool" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}') >= 2*MIB)) && break
    sleep 0.05
  done
  kill -9 $dpid; wait $dpid 2>/dev/null || true
  exec 7>&-
  [[ -n "$(ls -A "$work/spool")" ]] || fail "no spool file while writing"
  "$D" $common $(pargs s3) resume 2> "$work/log2" || { cat "$work/log2"; fail resume; }
  [[ "$(sqlite3 "$work/state/vigil.db" "select state from egress_uploads")" == failed ]] || fail "state"
  [[ -z "$(ls -A "$work/spool")" ]] || fail "spool not cleaned"
  [[ "$(count_objects s3 "$RUN.bin")" == 0 ]] || fail "an incomplete artifact was uploaded"
  ;;
web-identity)
  # AssumeRoleWithWebIdentity against moto_server (STS + S3 emulator), when it is installed.
  command -v moto_server > /dev/null || { echo "SKIP: moto_server not installed"; exit 77; }
  moto=$(free_port)
  moto_server -H 127.0.0.1 -p $moto > "$work/moto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$moto/ && break; sleep 0.1; done
  curl -sf -X PUT http://127.0.0.1:$moto/vigil-wi > /dev/null || fail "moto bucket"
  echo "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ2aWdpbCJ9.c2ln" > "$work/token"
  head -c $((7*MIB)) /dev/urandom > "$work/data"
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_WEB_IDENTITY_TOKEN_FILE="$work/token" \
    AWS_ROLE_ARN=arn:aws:iam::123456789012:role/vigil AWS_ENDPOINT_URL_STS=http://127.0.0.1:$moto \
    "$D" $common --kind s3 --endpoint http://127.0.0.1:$moto --bucket vigil-wi --path-style \
    --part-size $((5*MIB)) --name "$RUN.bin" put "$work/data" > "$work/path" 2> "$work/log" ||
    { cat "$work/log"; fail "upload with web identity"; }
  grep -q "temporary credentials from STS (web identity" "$work/log" || fail "no STS exchange"
  [[ "$(grep -c 'POST / HTTP' "$work/moto.log")" == 1 ]] || fail "expected one STS call"
  curl -sf "http://127.0.0.1:$moto/vigil-wi/$RUN.bin" | cmp - "$work/data" || fail "content"
  ;;
cli)
  # A YAML configuration (as the daemon loads it) with one provider of each kind.
  mkdir -p "$work/conf"
  cat > "$work/conf/egress.yaml" <<YAML
Storage:
  StateDir: $work/state
  SpoolDir: $work/spool
Egress:
  Properties:
    AzKey: $KEY
  FileSystem:
    Local:
      DirectoryPath: $work/out
  S3Storage:
    S3rver:
      Endpoint: $S3_URL
      BucketName: vigil
      RegionName: us-east-1
      AccessKeyId: S3RVER
      SecretAccessKey: S3RVER
      ForcePathStyle: true
      KeyPrefix: cli
      CopyBufferSize: 5MiB
      Compression: zstd
  AzureBlobStorage:
    Azurite:
      AccountUri: $AZ_URI
      ContainerName: vigil
      BlobPrefix: cli
      AccountKeyName: AzKey
YAML
  head -c $((6*MIB)) /dev/urandom > "$work/data"
  sha="$(sha256sum < "$work/data" | cut -d' ' -f1)"
  C="$build/vigil upload"
  [[ "$($C --config-dir "$work/conf" --egress Local --name "$RUN.bin" "$work/data")" == "$work/out/$RUN.bin" ]] || fail "fs path"
  check fs "$RUN.bin" "$sha" $((6*MIB))
  [[ "$($C --config-dir "$work/conf" --egress s3rver --name "$RUN.bin" "$work/data")" == "s3://vigil/cli/$RUN.bin.zst" ]] || fail "s3 path"
  curl -sf "$S3_URL/vigil/cli/$RUN.bin.zst" | zstd -qdc | cmp - "$work/data" || fail "s3 content"
  [[ "$($C --config-dir "$work/conf" --egress Azurite --name "$RUN.bin" - < "$work/data")" == "$AZ_URI/vigil/cli/$RUN.bin" ]] || fail "azure path"
  check azure-key "cli/$RUN.bin" "$sha" $((6*MIB))
  set +e
  $C --config-dir "$work/conf" --egress Nope "$work/data" 2> "$work/log"; rc=$?
  set -e
  [[ $rc == 1 ]] && grep -q 'no egress provider named "Nope"' "$work/log" || fail "unknown provider"
  $C --config-dir "$work/conf" --resume | grep -q "resumed 0 upload" || fail "resume"
  rm -f "$work/data"
  ;;
*)
  fail "unknown case $case_" ;;
esac
cd / && rm -rf "$work" # keep only failures' files (the big cases write hundreds of MB)
echo "PASS $case_"
