#!/usr/bin/env bash
# The container image's runtime root file system, built without a container engine: debootstrap
# (minbase) of this machine's Debian release plus packaging/runtime-packages.txt, from the mirror
# this machine's apt uses, cleaned as the Containerfile's runtime stage leaves it. Downloaded
# packages are kept in OUT/debs, so a rebuild only fetches what changed. Run by the image_rootfs
# fixture (vg_add_apps_fixture): once, while OUT/stamp matches this script and the list.
#   rootfs.sh OUT        -> OUT/root
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=$(realpath -m "$1")
[[ $(id -u) == 0 ]] || { echo "SKIP: debootstrap needs root"; exit 77; }
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap not found"; exit 77; }
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' |
         awk -v s="$suite" '$2 == s { print $1; exit }')
[[ -n "$suite" && -n "$mirror" ]] || { echo "rootfs.sh: no apt source for '$suite'" >&2; exit 1; }
pkgs=$(grep -v '^#' "$here/runtime-packages.txt" | paste -sd, -)
mkdir -p "$out/debs"
rm -rf "$out/root.new"
debootstrap --variant=minbase --include="$pkgs" --cache-dir="$out/debs" \
  "$suite" "$out/root.new" "$mirror" > "$out/debootstrap.log" 2>&1 ||
  { tail -20 "$out/debootstrap.log" >&2; exit 1; }
r="$out/root.new"
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/archives/*.deb
install -d -m 0700 "$r/etc/vigil" "$r/var/lib/vigil"
# where the tests bind-mount the vigil under test (the image copies its binary there)
install -m 0755 /dev/null "$r/usr/bin/vigil"
rm -rf "$out/root"
mv "$r" "$out/root"
echo "rootfs.sh: $(du -sh "$out/root" | cut -f1) in $out/root"
