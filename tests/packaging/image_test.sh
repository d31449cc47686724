#!/usr/bin/env bash
# The container image, without a container engine: vigil runs from the image's root file system
# (packaging/rootfs.sh, the image_rootfs fixture) in a mount namespace of its own (unshare +
# chroot), with only what that root holds: every library it links resolves there, `vigil check`
# accepts a configuration, `vigil dump` of a process outside streams its core to S3 (s3rver) and
# `vigil upload` sends a file to Azure Blob (Azurite), both read back from the servers; and the
# Containerfile installs the same package list on the same Debian release.
#   image_test.sh SOURCE_DIR BUILD_DIR ROOTFS_OUT VIGIL TARGET
set -euo pipefail
src=$(realpath "$1") build=$(realpath "$2") out=$3 vigil=$(realpath "$4") target=$(realpath "$5")
root="$out/root"
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "SKIP: unshare and chroot need root"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: unshare not found"; exit 77; }
[[ -x "$root/bin/sh" ]] || { echo "SKIP: no image root file system in $root (image_rootfs fixture)"; exit 77; }
[[ -f "$build/egress-servers/ports.env" ]] || { echo "SKIP: no egress servers (node missing)"; exit 77; }
source "$build/egress-servers/ports.env"
if ldd "$vigil" | grep -q libasan; then
  echo "SKIP: a sanitizer build needs libasan, which the image does not hold"; exit 77
fi

# the Containerfile and rootfs.sh agree: Debian 12 (bookworm), packaging/runtime-packages.txt
cf="$src/packaging/Containerfile"
grep -q '^FROM debian:12 AS build' "$cf" && grep -q '^FROM debian:12-slim$' "$cf" ||
  fail "the Containerfile's stages are not Debian 12"
[[ "$(. "$root/etc/os-release" && echo "$VERSION_ID")" == 12 ]] || fail "the root is not Debian 12"
grep -q 'runtime-packages.txt' "$cf" || fail "the Containerfile does not install runtime-packages.txt"
for p in $(grep -v '^#' "$src/packaging/runtime-packages.txt"); do
  chroot "$root" dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    fail "package $p is missing from the root"
done
! chroot "$root" sh -c 'command -v cc gcc cmake' >/dev/null || fail "a compiler in the runtime root"

work=$(mktemp -d)
pids=()
trap '{ for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" || true; done; wait; } 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/conf" "$work/state"
run="$(basename "$work")"
sas=$(python3 "$src/tests/egress/azhelper.py" sas)
az="http://127.0.0.1:$AZ_PORT/devstoreaccount1"
python3 "$src/tests/egress/azhelper.py" mkcontainer "$az" image
cat > "$work/conf/settings.yaml" <<YAML
Egress:
  S3Storage:
    s3:
      Endpoint: http://127.0.0.1:$S3_PORT
      BucketName: vigil
      RegionName: us-east-1
      AccessKeyId: S3RVER
      SecretAccessKey: \${file:/etc/vigil/s3-secret}
      ForcePathStyle: true
      KeyPrefix: image-$run
  AzureBlobStorage:
    azure:
      AccountUri: $az
      ContainerName: image
      BlobPrefix: $run
      SharedAccessSignature: \${file:/etc/vigil/azure-sas}
CollectionRules:
  Crash:
    Trigger: {Type: ProcessCrash}
    Actions:
      - {Type: CollectDump, Settings: {Egress: s3}}
YAML
printf 'S3RVER' > "$work/conf/s3-secret"
printf '%s' "$sas" > "$work/conf/azure-sas"

# vigil ARGS... inside the image: its own mount namespace, the image as root, /proc of this
# PID namespace (the processes it dumps are outside), the configuration and state bound in
in_image() {
  unshare --mount --fork -- sh -c '
    set -e
    mount --make-rprivate /
    r=$1; shift
    mount --bind "$VG_VIGIL" "$r/usr/bin/vigil"
    mount -t proc proc "$r/proc"
    mount -t tmpfs tmpfs "$r/tmp"
    mount --bind "$VG_WORK/conf" "$r/etc/vigil"
    mount --bind "$VG_WORK/state" "$r/var/lib/vigil"
    exec chroot "$r" "$@"' sh "$root" "$@"
}
export VG_VIGIL="$vigil" VG_WORK="$work"

in_image ldd /usr/bin/vigil > "$work/ldd" 2>&1 || fail "ldd in the image: $(cat "$work/ldd")"
! grep -q 'not found' "$work/ldd" || fail "libraries missing from the image: $(grep 'not found' "$work/ldd")"
in_image /usr/bin/vigil check --config-dir /etc/vigil > "$work/check" 2>&1 ||
  fail "vigil check in the image: $(cat "$work/check")"
grep -q 'configuration OK' "$work/check" || fail "vigil check said: $(cat "$work/check")"

# a dump of a process outside the image, streamed to S3
coproc TARGET { exec "$target" --heap-mb 16; }
pids+=("$TARGET_PID")
read -r -t 60 ready <&"${TARGET[0]}" || fail "the target did not start"
pid=$TARGET_PID
in_image /usr/bin/vigil dump "$pid" --type Full --egress s3 --config-dir /etc/vigil \
  > "$work/dump" 2>&1 || fail "vigil dump in the image: $(cat "$work/dump")"
key=$(sed -n 's|^s3://vigil/\([^:]*\):.*|\1|p' "$work/dump")
[[ -n "$key" ]] || fail "no S3 location in: $(cat "$work/dump")"
curl -sf "http://127.0.0.1:$S3_PORT/vigil/$key" -o "$work/core" || fail "the core is not in S3 ($key)"
[[ "$(head -c 4 "$work/core" | od -An -c | tr -d ' ')" == '177ELF' ]] || fail "the S3 object is no ELF file"
size=$(stat -c %s "$work/core")
grep -q ": $size bytes" "$work/dump" || fail "core of $size bytes, vigil said: $(cat "$work/dump")"

# an upload to Azure Blob of a file in the image's state directory
head -c 3000000 /dev/urandom > "$work/state/payload"
in_image /usr/bin/vigil upload --config-dir /etc/vigil --egress azure --name payload.bin \
  /var/lib/vigil/payload > "$work/upload" 2>&1 || fail "vigil upload in the image: $(cat "$work/upload")"
grep -qx "$az/image/$run/payload.bin" "$work/upload" || fail "upload said: $(cat "$work/upload")"
curl -sf "$az/image/$run/payload.bin?$sas" | cmp - "$work/state/payload" ||
  fail "the blob differs from the file"

# the crash handler from the image: a core on stdin to S3
in_image /usr/bin/vigil crash --config-dir /etc/vigil \
  "$pid:$pid:$pid:$pid:11:$(date +%s):0:0:0:1:image" vg_api_target '!x' < "$work/core" \
  > "$work/crash" 2>&1 || fail "vigil crash in the image: $(cat "$work/crash")"
grep -q 'CollectDump done {"EgressPath":"s3://vigil/' "$work/crash" || fail "crash: $(cat "$work/crash")"
# the Kubernetes DaemonSet's crash handler (examples/kubernetes/daemonset.yaml): the node runs it
# for a crash, and it runs `vigil crash` inside the running vigil container, found by its pid
# file. Here the container is `vigil run` in the image root, the node's pid file in $work.
/usr/bin/python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and "crash-handler" in d["data"]:
        sys.stdout.write(d["data"]["crash-handler"])' "$src/examples/kubernetes/daemonset.yaml" |
  sed "s|/var/lib/vigil/vigil.pid|$work/state/vigil.pid|" > "$work/crash-handler"
grep -q nsenter "$work/crash-handler" || fail "no crash-handler in the DaemonSet's ConfigMap"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
in_image /bin/sh -c "echo \$\$ > /var/lib/vigil/vigil.pid && exec /usr/bin/vigil run \
  --config-dir /etc/vigil --state-dir /var/lib/vigil --urls http://127.0.0.1:$port" \
  > "$work/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  [[ -s "$work/state/vigil.pid" ]] && [[ "$(cat "/proc/$(cat "$work/state/vigil.pid")/comm" 2>/dev/null)" == vigil ]] && break
  sleep 0.1
done
dpid=$(cat "$work/state/vigil.pid" 2>/dev/null) || fail "the containerized vigil wrote no pid: $(cat "$work/daemon.log")"
pids+=("$dpid")
sh "$work/crash-handler" crash --config-dir /etc/vigil \
  "$pid:$pid:$pid:$pid:6:$(date +%s):0:0:0:1:k8s-node" vg_api_target '!x' < "$work/core" \
  > "$work/handler" 2>&1 || fail "the DaemonSet's crash handler: $(cat "$work/handler")"
grep -q 'CollectDump done {"EgressPath":"s3://vigil/' "$work/handler" ||
  fail "the crash handler did not ship the core: $(cat "$work/handler")"
kill "$dpid"
echo "PASS image root file system ($(du -sh "$root" | cut -f1)): check, dump to S3, upload to Azure, crash, the DaemonSet's crash handler"
