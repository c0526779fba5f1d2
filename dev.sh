#!/usr/bin/env bash
# Set up, build, mount and test sbxfs on Debian 12.
#
#   ./dev.sh deps            install the packages sbxfs needs (as root, or via sudo)
#   ./dev.sh build           configure and build into ./build
#   ./dev.sh mount DIR [-o ...]  deps + build as needed, then mount the local provider on DIR
#   ./dev.sh test            deps + build as needed, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential meson ninja-build pkg-config libfuse3-dev fuse3
          libcurl4-openssl-dev libcjson-dev libwebsockets-dev libssl-dev zlib1g-dev
          bubblewrap util-linux coreutils python3 python3-pytest python3-aiohttp
          python3-cbor2
          podman runc busybox-static)

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

deps() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

build() {
	[ -f build/build.ninja ] || meson setup build "$@"
	ninja -C build
}

case "${1:-}" in
deps) deps ;;
build) shift; deps; build "$@" ;;
mount)
	shift
	[ $# -ge 1 ] || { echo "usage: $0 mount DIR [-o key=value ...]" >&2; exit 2; }
	dir=$1; shift
	deps; build
	mkdir -p "$dir"
	./build/sbxfs "$@" "$dir"
	echo "mounted on $dir; unmount with: fusermount3 -u $dir"
	;;
test)
	shift
	deps; build
	meson test -C build --print-errorlogs "$@"
	;;
*)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
