#!/bin/sh
# SPDX-License-Identifier: MIT
# The modules of src/ form layers: no two include each other, directly or
# through others.  A module is a source file and its header, by base name,
# with one name for the files it is split into (fs_dir.c is fs, daytona_cmd.c
# is daytona).  Prints the modules of a cycle and fails if there is one.
set -eu
root=${1:-$(dirname "$0")/..}
cd "$root"

module() {
	base=${1##*/}
	base=${base%.*}
	echo "${base%%_*}"
}

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in $(find src include -name '*.[ch]' | sort); do
	from=$(module "$f")
	sed -n 's/^#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
	while read -r inc; do
		to=$(module "$inc")
		# Every module is a node, even one that includes nothing.
		echo "$from $from"
		[ "$from" = "$to" ] || echo "$from $to"
	done
done >"$edges"

# tsort orders a graph without cycles and names each cycle it finds.
if ! out=$(tsort "$edges" 2>&1 >/dev/null) || [ -n "$out" ]; then
	echo "include cycle among the modules of src/:" >&2
	echo "$out" >&2
	exit 1
fi
echo "no include cycle among $(cut -d' ' -f1 "$edges" | sort -u | wc -l) modules"
