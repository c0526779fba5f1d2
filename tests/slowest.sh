#!/bin/sh
# Where a meson test run's time went: each test group's time and result,
# and the slowest tests of each mount group (pytest --durations, which the
# groups print into the log).
#   tests/slowest.sh [BUILD_DIR]
log="${1:-build}/meson-logs/testlog.txt"
[ -f "$log" ] || exit 0
awk '
/^test: +/ { name = $2 }
/^duration: +/ { dur = $2 }
/^result: +/ { sub(/^result: +/, ""); printf "%-16s %9s  %s\n", name, dur, $0 }
/slowest [0-9]+ durations/ { show = 1; next }
show && /^[0-9.]+s (call|setup|teardown)/ { print "    " $0; next }
show && !/^[0-9.]+s / { show = 0 }
' "$log"
