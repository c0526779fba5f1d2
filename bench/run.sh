#!/usr/bin/env bash
# bench/run.sh: time the same file operations on a native directory, through
# sbxfs (local provider), through a reference FUSE filesystem (fuseref),
# through sshfs to 127.0.0.1 and through sbxfs's remote providers (daytona,
# rexec, vtrix) over their emulators (tests/emulators/NAME.py) on 127.0.0.1,
# microsandbox over its emulator's msb and agent sockets (no network: a
# local backend) and over the emulator's stand-in for its cloud
# (microsandbox-cloud: REST and the agent WebSocket, through the relay
# with LATENCY_MS), and docker over real Podman behind a counting proxy
# (engine.py), side by side with Podman's own client on the same container
# (docker-cp: `podman --url cp` and `exec`, as `docker cp` and `docker
# exec` move files and run commands), and print a table of medians and
# ratios (plain text, then Markdown for docs/performance.md), with each
# emulator's request counts per operation.
#
# Run as root from anywhere:   bench/run.sh
# Quick run:                   BIG_MB=64 RUNS=3 bench/run.sh
# Without sbxfs (no binary):   TARGETS="native sshfs" bench/run.sh
# Without the remote cp -r:    OPS="find lsR du grep cat exec" bench/run.sh
#   (through a remote provider, cp -r of include/ is about 9,000 uploads,
#   tens of seconds per copy: far the slowest operation, within OP_TIMEOUT)
# Only some targets:           TARGETS="native sbxfs rexec" bench/run.sh
#
# Environment (defaults in brackets):
#   BENCH_DIR     work directory: corpus, scratch, results [/var/tmp/sbxfs-bench]
#   BIG_MB        size of the big file in MiB [512]
#   RUNS          runs per operation; the median is reported [5]
#   EXEC_RUNS     exec round trips per warm exec sample [20]
#   SBXFS         the sbxfs binary [REPO/build/sbxfs]
#   SBXFS_OPTS    more -o options for every sbxfs mount (trace=provider, say,
#                 with KEEP_RUN=1 to read RUN/TARGET.log afterwards) []
#   SSH_PORT      first loopback port to try for our own sshd [2222]
#   TARGETS       any of: native sbxfs fuseref sshfs daytona rexec vtrix docker
#                 docker-cp microsandbox microsandbox-cloud [all eleven];
#                 docker-cp needs docker (it is docker's container)
#   OPS           any of: find lsR du grep cat get cp exec [all eight]:
#                 get is cp -r of the corpus tree out to this machine, cp
#                 cp -r of it in; docker-cp does cat, get, cp and exec
#   OP_TIMEOUT    seconds before one timed operation is killed [900]
#   MOUNT_TIMEOUT seconds to wait for a mount to appear [30]
#   KEEP_RUN=1    keep the per-run directory (logs, sbxfs state) afterwards
#   LATENCY_MS    one-way delay, in milliseconds, between each network
#                 target (sshfs and the remote ones) and its server: they
#                 go through bench/relay.py, which delays every byte that
#                 way in each direction and a new connection by a round
#                 trip (0: no relay) [0]
#   CORPUS_SRC    the tree copied as the corpus's include/ [/usr/include]
#
# At a distance:  LATENCY_MS=25 CORPUS_SRC=/usr/include/linux BIG_MB=64 \
#                 TARGETS="sshfs daytona rexec vtrix docker" bench/run.sh
#
# fuseref: what a minimal FUSE filesystem costs on this machine. It is
# libfuse's example low-level passthrough filesystem, passthrough_ll.c, as
# Debian ships it in libfuse3-dev (/usr/share/doc/libfuse3-dev/examples/),
# built into the per-run directory at run time (nothing of it is in this
# repository), mounted with -o source=DATA,cache=always (the kernel keeps
# attributes, entries and pages: its most favourable setting) over the same
# directory sshfs exports. It holds one descriptor per inode the kernel
# knows, so it runs with the open-file limit raised to the hard limit.
#
# Cold = a fresh mount (unmount + remount of the FUSE target; the emulators
# keep running) and the kernel's page, dentry and inode caches dropped
# (sync; echo 3 > drop_caches), for all targets alike. Warm = the same
# operation again at once on that mount.
#
# Remote targets: each has its own emulator and mount, with one sandbox
# "bench". The corpus is copied into the sandbox's directory on the
# emulator's side (as sshfs's corpus lives on its server), and cp -r copies
# are removed there. The emulators count requests: each timed remote
# operation is bracketed (outside the timing) by POST /_emu/reset and
# GET /_emu/stats, and the counts go to RESULTS/STAMP.requests.tsv.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
esac

# The exact command line, with the overrides that were set, for the report.
CMDLINE=""
for v in BENCH_DIR BIG_MB RUNS EXEC_RUNS SBXFS SBXFS_OPTS SSH_PORT TARGETS OPS OP_TIMEOUT MOUNT_TIMEOUT LATENCY_MS CORPUS_SRC; do
  if [[ -n ${!v+x} ]]; then CMDLINE+="$v=$(printf %q "${!v}") "; fi
done
if [[ $(pwd -P) == "$REPO" ]]; then CMDLINE+="bench/run.sh"; else CMDLINE+="$0"; fi

BENCH_DIR=${BENCH_DIR:-/var/tmp/sbxfs-bench}
BIG_MB=${BIG_MB:-512}
RUNS=${RUNS:-5}
LATENCY_MS=${LATENCY_MS:-0}
CORPUS_SRC=${CORPUS_SRC:-/usr/include}
EXEC_RUNS=${EXEC_RUNS:-20}
SBXFS=${SBXFS:-$REPO/build/sbxfs}
SBXFS_OPTS=${SBXFS_OPTS:+,$SBXFS_OPTS}
SSH_PORT=${SSH_PORT:-2222}
REMOTES="daytona rexec vtrix docker microsandbox microsandbox-cloud"
TARGETS=${TARGETS:-native sbxfs fuseref sshfs $REMOTES docker-cp}
TARGETS=${TARGETS//,/ }
OP_TIMEOUT=${OP_TIMEOUT:-900}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-30}
KEEP_RUN=${KEEP_RUN:-0}
PATTERN=zzqqxx_nomatch
OPS=${OPS:-find lsR du grep cat get cp exec}
OPS=${OPS//,/ }

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
is_remote() { [[ " $REMOTES " == *" $1 "* ]]; }
uses_remote() { local t; for t in $TARGETS; do is_remote "$t" && return 0; done; return 1; }
uses_sbxfs() { has_target sbxfs || uses_remote; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages, starts sshd and drops caches)"
for t in $TARGETS; do
  case $t in native|sbxfs|fuseref|sshfs|daytona|rexec|vtrix|docker|docker-cp|microsandbox|microsandbox-cloud) ;;
    *) die "unknown target '$t' in TARGETS" ;; esac
done
has_target docker-cp && ! has_target docker &&
  die "docker-cp needs docker in TARGETS: it works on docker's container"
for op in $OPS; do
  case $op in find|lsR|du|grep|cat|get|cp|exec) ;; *) die "unknown operation '$op' in OPS" ;; esac
done
read -r -a TARGET_LIST <<<"$TARGETS"
for v in BIG_MB RUNS EXEC_RUNS SSH_PORT OP_TIMEOUT MOUNT_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $LATENCY_MS =~ ^[0-9]+$ ]] || die "LATENCY_MS must be a whole number of milliseconds, not '$LATENCY_MS'"
[[ -d $CORPUS_SRC && $CORPUS_SRC == /* ]] || die "CORPUS_SRC must be an absolute directory, not '$CORPUS_SRC'"
[[ $BENCH_DIR == /* ]] || BENCH_DIR="$(pwd)/$BENCH_DIR"
[[ $BENCH_DIR != *[[:space:]]* ]] || die "BENCH_DIR must not contain spaces"
if uses_sbxfs; then
  [[ $SBXFS == /* ]] || SBXFS="$(pwd)/$SBXFS"
  [[ -x $SBXFS ]] || die "no sbxfs binary at '$SBXFS' (build it: meson setup build && ninja -C build; or set SBXFS, or TARGETS='native sshfs')"
fi
# The emulator of each remote target; docker's is real Podman behind a
# counting proxy (tests/emulators/engine.py).
# The emulator of target $1 (microsandbox-cloud: the microsandbox hub's
# stand-in for the cloud), and the provider it mounts.
emu_name() {
  case $1 in docker) echo engine ;; microsandbox-cloud) echo microsandbox ;; *) echo "$1" ;; esac
}
provider_of() { echo "${1%-cloud}"; }
for t in $TARGETS; do
  is_remote "$t" || continue
  [[ -f $REPO/tests/emulators/$(emu_name "$t").py ]] ||
    die "no $t emulator at '$REPO/tests/emulators/$(emu_name "$t").py'"
done
[[ -e /dev/fuse ]] || die "/dev/fuse is missing"

# ---------------------------------------------------------------- packages

# Where Debian's libfuse3-dev puts libfuse's examples (the fuseref target).
FUSEREF_SRC=/usr/share/doc/libfuse3-dev/examples

install_deps() {
  local pkgs=()
  command -v fusermount3 >/dev/null || pkgs+=(fuse3)
  command -v timeout >/dev/null || pkgs+=(coreutils)
  command -v findmnt >/dev/null || pkgs+=(util-linux)
  [[ -x /usr/bin/python3 ]] || pkgs+=(python3)
  if has_target sshfs; then
    [[ -x /usr/sbin/sshd ]] || pkgs+=(openssh-server)
    { command -v ssh && command -v ssh-keygen; } >/dev/null || pkgs+=(openssh-client)
    command -v sshfs >/dev/null || pkgs+=(sshfs)
  fi
  if has_target docker; then
    command -v podman >/dev/null || pkgs+=(podman)
    command -v runc >/dev/null || pkgs+=(runc)
    [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || pkgs+=(busybox-static)
  fi
  if has_target fuseref; then
    { [[ -f $FUSEREF_SRC/passthrough_ll.c ]] && pkg-config --exists fuse3; } 2>/dev/null ||
      pkgs+=(libfuse3-dev)
    command -v cc >/dev/null || pkgs+=(gcc)
    command -v pkg-config >/dev/null || pkgs+=(pkg-config)
  fi
  if uses_remote; then
    command -v bwrap >/dev/null || pkgs+=(bubblewrap)
    command -v nsenter >/dev/null || pkgs+=(util-linux)
    command -v curl >/dev/null || pkgs+=(curl)
    [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import aiohttp' 2>/dev/null ||
      pkgs+=(python3-aiohttp)
    { has_target microsandbox || has_target microsandbox-cloud; } &&
      ! /usr/bin/python3 -c 'import cbor2' 2>/dev/null &&
      pkgs+=(python3-cbor2)
  fi
  ((${#pkgs[@]})) || return 0
  log "installing: ${pkgs[*]}"
  # Keep package scripts from starting the system sshd (the usual
  # policy-rc.d trick), and only if no policy is in place already.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; made_policy=1
  fi
  local rc=0
  { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } || rc=$?
  ((made_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get failed ($rc)"
}
install_deps

# ---------------------------------------------------------------- layout

DATA=$BENCH_DIR/data           # exported by sshfs and fuseref; corpus and scratch
CORPUS=$DATA/corpus            # include/ (copy of /usr/include) and big.bin
SCRATCH=$DATA/scratch          # cp -r destinations for native, sshfs and fuseref
RUN=$BENCH_DIR/run             # per-invocation: sshd, mounts, sbxfs state, logs
GOT=$RUN/got                   # get destinations, per target
RESULTS=$BENCH_DIR/results     # reports kept across invocations
MNT_SBXFS=$RUN/mnt/sbxfs
MNT_SSHFS=$RUN/mnt/sshfs
MNT_FUSEREF=$RUN/mnt/fuseref
STATE=$RUN/state
BOX=$MNT_SBXFS/bench
SBXFS_PID=""
SSHFS_PID=""
FUSEREF_PID=""
SSHD_PID=""
OP_PID=""
# Remote target T: its mount $RUN/mnt/T with state in $RUN/state-T, its
# emulator's sandboxes under $RUN/T-emu (each DIR/<id>/ is a "/"), and:
declare -A MOUNT_PID=()         # sbxfs daemon of the mount
declare -A EMU_PID=()           # the emulator
declare -A EMU_PORT=()          # its loopback port
declare -A EMU_SOCK=()          # or its Unix socket (docker)
declare -A EMU_KEY=()           # the token it accepts
declare -A RELAY_PID=()         # bench/relay.py in front of a server (LATENCY_MS)
declare -A RELAY_AT=()          # where it listens: a port, or a Unix socket
declare -A SBX_DIR=()           # host directory of the sandbox's "/"
declare -A SBX_ENTRIES=()       # entries of the corpus tree through the mount
remote_mnt() { printf '%s/mnt/%s' "$RUN" "$1"; }
remote_box() { printf '%s/mnt/%s/bench' "$RUN" "$1"; }

# Is anything mounted at or below $1?  (reads mountinfo, never stats the
# mount itself, so a hung FUSE daemon cannot hang us here)
mounted_below() {
  awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m) }
                 m == p || index(m, p "/") == 1 { found = 1 } END { exit !found }' \
    /proc/self/mountinfo
}
is_mounted() {
  awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m) } m == p { found = 1 } END { exit !found }' \
    /proc/self/mountinfo
}

# Unmount a FUSE mount we made and make sure its daemon ($2) is gone.
unmount_fuse() {
  local mnt=$1 pid=${2:-} i
  if is_mounted "$mnt"; then
    timeout 60 fusermount3 -u "$mnt" 2>/dev/null ||
      timeout 10 fusermount3 -uz "$mnt" 2>/dev/null || true
  fi
  if [[ -n $pid ]]; then
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "daemon $pid did not exit after unmount; SIGTERM"
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
  if is_mounted "$mnt"; then timeout 10 fusermount3 -uz "$mnt" 2>/dev/null || true; fi
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n $OP_PID ]]; then
    kill -TERM "$OP_PID" 2>/dev/null; wait "$OP_PID" 2>/dev/null
  fi
  if [[ -n $SBXFS_PID ]] && is_mounted "$MNT_SBXFS"; then
    timeout 30 bash -c 'echo stop > "$1"' _ "$BOX/ctl" 2>/dev/null
  fi
  unmount_fuse "$MNT_SBXFS" "$SBXFS_PID"
  unmount_fuse "$MNT_SSHFS" "$SSHFS_PID"
  unmount_fuse "$MNT_FUSEREF" "$FUSEREF_PID"
  local t pid i
  for t in "${!MOUNT_PID[@]}"; do unmount_fuse "$(remote_mnt "$t")" "${MOUNT_PID[$t]}"; done
  for t in "${!EMU_PID[@]}"; do
    # SIGTERM: the emulator kills every sandbox process and exits.
    pid=${EMU_PID[$t]}
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$t emulator $pid did not exit on SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  if [[ -n $SSHD_PID ]]; then
    kill -TERM "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null
  fi
  for t in "${!RELAY_PID[@]}"; do
    kill -TERM "${RELAY_PID[$t]}" 2>/dev/null; wait "${RELAY_PID[$t]}" 2>/dev/null
  done
  rm -rf --one-file-system "$SCRATCH"
  if [[ $KEEP_RUN == 1 ]]; then
    log "kept $RUN"
  elif [[ -d $RUN ]]; then
    if mounted_below "$RUN"; then
      log "something is still mounted under $RUN; not removing it"
    else
      rm -rf --one-file-system "$RUN"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -d $RUN ]]; then
  mounted_below "$RUN" && die "$RUN has mounts from an earlier run; unmount them first"
  rm -rf --one-file-system "$RUN"
fi
mkdir -p "$RUN/ssh" "$MNT_SBXFS" "$MNT_SSHFS" "$MNT_FUSEREF" "$STATE" "$SCRATCH" "$RESULTS"
if uses_sbxfs; then
  # Run a private copy, so a rebuild during the benchmark changes nothing.
  SBXFS_SRC=$SBXFS
  SBXFS=$RUN/sbxfs
  cp "$SBXFS_SRC" "$SBXFS"
  # The commit of the tree the binary sits in (the repository for the default).
  SBXFS_GIT=$(git -C "$(dirname "$SBXFS_SRC")" describe --always --dirty 2>/dev/null || echo 'no commit')
fi
declare -A EMU_GIT=()
for t in $TARGETS; do
  is_remote "$t" || continue
  # Likewise the emulators.
  mkdir -p "$(remote_mnt "$t")" "$RUN/state-$t"
  e=$(emu_name "$t")
  # The emulator's script, its modules (NAME_*.py) and what they share.
  emu_files=("tests/emulators/$e.py" tests/emulators/common.py)
  for f in "$REPO/tests/emulators/$e"_*.py; do
    [[ -e $f ]] && emu_files+=("tests/emulators/${f##*/}")
  done
  (cd "$REPO" && cp "${emu_files[@]}" "$RUN/")
  if [[ $t == microsandbox* ]]; then
    # An msb on PATH that runs the copy.
    mkdir -p "$RUN/bin"
    printf '#!/bin/sh\nexec /usr/bin/python3 %s/microsandbox.py cli "$@"\n' "$RUN" >"$RUN/bin/msb"
    chmod 755 "$RUN/bin/msb"
  fi
  EMU_GIT[$t]=$(git -C "$REPO" log -1 --format=%h -- "${emu_files[@]}" 2>/dev/null || true)
  git -C "$REPO" diff --quiet HEAD -- "${emu_files[@]}" 2>/dev/null ||
    EMU_GIT[$t]+=" (modified)"
done
: >"$RUN/ops.err"

# ---------------------------------------------------------------- corpus

build_corpus() {
  mkdir -p "$CORPUS"
  if [[ $(cat "$CORPUS/.include-done" 2>/dev/null) != "$CORPUS_SRC" ]]; then
    log "copying $CORPUS_SRC into $CORPUS/include"
    rm -rf "$CORPUS/include"
    cp -a "$CORPUS_SRC" "$CORPUS/include"
    echo "$CORPUS_SRC" >"$CORPUS/.include-done"
  fi
  local want=$((BIG_MB * 1024 * 1024))
  if [[ ! -f $CORPUS/big.bin || $(stat -c %s "$CORPUS/big.bin") -ne $want ]]; then
    log "writing $BIG_MB MiB of random data to $CORPUS/big.bin"
    head -c "$want" /dev/urandom >"$CORPUS/big.bin.tmp"
    mv "$CORPUS/big.bin.tmp" "$CORPUS/big.bin"
  fi
  CORPUS_FILES=$(find "$CORPUS/include" | wc -l)
  CORPUS_SYMLINKS=$(find "$CORPUS/include" -type l | wc -l)
  CORPUS_MIB=$(du -sm --apparent-size "$CORPUS/include" | cut -f1)
}
build_corpus

# ---------------------------------------------------------------- caches

DROP_OK=0
if timeout 120 sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches' 2>/dev/null; then
  DROP_OK=1
else
  log "cannot write /proc/sys/vm/drop_caches: native cold runs are really warm"
fi
drop_caches() {
  ((DROP_OK)) || return 0
  timeout 120 sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches' ||
    log "drop_caches failed or timed out"
}

# ---------------------------------------------------------------- sshd, sshfs

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SSH_OPTS=()
start_sshd() {
  local port=$SSH_PORT
  while port_busy "$port"; do
    port=$((port + 1))
    ((port < SSH_PORT + 100)) || die "no free loopback port in $SSH_PORT..$((SSH_PORT + 99))"
  done
  SSH_PORT=$port
  local d=$RUN/ssh sftp=/usr/lib/openssh/sftp-server
  [[ -x $sftp ]] || sftp=internal-sftp
  ssh-keygen -q -t ed25519 -N '' -C sbxfs-bench-host -f "$d/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C sbxfs-bench-client -f "$d/id_ed25519"
  cp "$d/id_ed25519.pub" "$d/authorized_keys"
  chmod 600 "$d/authorized_keys"
  mkdir -p /run/sshd && chmod 755 /run/sshd   # sshd's privilege separation dir
  SSH_OPTS=(-o "IdentityFile=$d/id_ed25519" -o StrictHostKeyChecking=no
            -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR)
  # UsePAM no first; if root's account looks locked to sshd without PAM,
  # try again with PAM.
  local pam i
  for pam in no yes; do
    cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM $pam
StrictModes no
AllowUsers root
X11Forwarding no
PrintMotd no
Subsystem sftp $sftp
EOF
    /usr/sbin/sshd -t -f "$d/sshd_config" || die "sshd rejects $d/sshd_config"
    /usr/sbin/sshd -D -e -f "$d/sshd_config" </dev/null >>"$RUN/sshd.log" 2>&1 &
    SSHD_PID=$!
    for ((i = 0; i < 50; i++)); do
      if timeout 10 ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" root@127.0.0.1 true </dev/null 2>>"$RUN/sshd.log"; then
        log "sshd (pid $SSHD_PID, UsePAM $pam) on 127.0.0.1:$SSH_PORT"
        return 0
      fi
      kill -0 "$SSHD_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -TERM "$SSHD_PID" 2>/dev/null || true
    wait "$SSHD_PID" 2>/dev/null || true
    SSHD_PID=""
  done
  cat "$RUN/sshd.log" >&2
  die "cannot log in to our own sshd on 127.0.0.1:$SSH_PORT"
}

# With LATENCY_MS, start a relay named $1 in front of a server: "--to
# HOST:PORT" or "--to-unix PATH" in $2 $3.  Sets RELAY_AT[$1].
start_relay() {
  local name=$1 i at=""
  local listen=()
  [[ $2 == --to-unix ]] && listen=(--listen-unix "$RUN/$name-relay.sock")
  /usr/bin/python3 "$HERE/relay.py" "$2" "$3" "${listen[@]}" --delay-ms "$LATENCY_MS" \
    </dev/null >"$RUN/$name-relay.at" 2>>"$RUN/$name-relay.log" &
  RELAY_PID[$name]=$!
  for ((i = 0; i < 100; i++)); do
    { read -r at <"$RUN/$name-relay.at"; } 2>/dev/null || at=""
    [[ -n $at ]] && break
    sleep 0.1
  done
  [[ -n $at ]] || die "the relay in front of $name did not start"
  RELAY_AT[$name]=$at
  log "$name: through a relay of ${LATENCY_MS} ms each way (pid ${RELAY_PID[$name]}, $at)"
}

# Wait up to MOUNT_TIMEOUT seconds until "$@" succeeds, as long as the daemon
# $2 lives; $1 names what we wait for.
wait_mount() {
  local what=$1 pid=$2; shift 2
  local deadline=$((SECONDS + MOUNT_TIMEOUT))
  while ((SECONDS < deadline)); do
    if timeout 5 "$@" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "$what: daemon exited"; return 1; }
    sleep 0.05
  done
  log "$what: not ready after ${MOUNT_TIMEOUT}s"
  return 1
}

# Debian's sshfs (CVE-2026-47187 fix) rejects symlink targets that are
# absolute or contain "..", with EPERM, unless told otherwise; /usr/include
# has such links and the server is our own, so allow them where the option
# exists.
SSHFS_EXTRA=BatchMode=yes,LogLevel=ERROR
if has_target sshfs && sshfs --help 2>&1 | grep -q no_contain_symlinks; then
  SSHFS_EXTRA+=,no_contain_symlinks
fi

mount_sshfs() {
  local port=$SSH_PORT
  unmount_fuse "$MNT_SSHFS" "$SSHFS_PID"
  SSHFS_PID=""
  if ((LATENCY_MS > 0)); then
    [[ -n ${RELAY_AT[sshfs]:-} ]] || start_relay sshfs --to "127.0.0.1:$SSH_PORT"
    port=${RELAY_AT[sshfs]}
  fi
  sshfs -f "root@127.0.0.1:$DATA" "$MNT_SSHFS" \
    -o "IdentityFile=$RUN/ssh/id_ed25519,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,port=$port" \
    -o "$SSHFS_EXTRA" </dev/null >>"$RUN/sshfs.log" 2>&1 &
  SSHFS_PID=$!
  wait_mount "sshfs mount" "$SSHFS_PID" test -d "$MNT_SSHFS/corpus/include" ||
    { tail -n 20 "$RUN/sshfs.log" >&2; die "sshfs did not mount"; }
}

# ---------------------------------------------------------------- fuseref

# libfuse's example, built from the installed package once per invocation.
FUSEREF=$RUN/passthrough_ll
FUSEREF_OPTS=""
FUSEREF_NOFILE=""
build_fuseref() {
  [[ -f $FUSEREF_SRC/passthrough_ll.c ]] ||
    die "no $FUSEREF_SRC/passthrough_ll.c (libfuse3-dev installed without its examples?)"
  log "building $FUSEREF from $FUSEREF_SRC/passthrough_ll.c"
  # shellcheck disable=SC2046 # pkg-config prints several words
  cc -O2 -I"$FUSEREF_SRC" "$FUSEREF_SRC/passthrough_ll.c" -o "$FUSEREF" \
    $(pkg-config --cflags --libs fuse3) >"$RUN/fuseref-build.log" 2>&1 ||
    { cat "$RUN/fuseref-build.log" >&2; die "building passthrough_ll failed"; }
  FUSEREF_OPTS="-f -o source=$DATA,cache=always"
}

mount_fuseref() {
  unmount_fuse "$MNT_FUSEREF" "$FUSEREF_PID"
  FUSEREF_PID=""
  # One O_PATH descriptor per inode the kernel holds, and a cp -r pair
  # alone is two corpus trees: the soft open-file limit goes up to the hard.
  # shellcheck disable=SC2086 # FUSEREF_OPTS is words
  (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$FUSEREF" $FUSEREF_OPTS "$MNT_FUSEREF") \
    </dev/null >>"$RUN/fuseref.log" 2>&1 &
  FUSEREF_PID=$!
  wait_mount "fuseref mount" "$FUSEREF_PID" test -d "$MNT_FUSEREF/corpus/include" ||
    { tail -n 20 "$RUN/fuseref.log" >&2; die "passthrough_ll did not mount"; }
  FUSEREF_NOFILE=$(awk '/^Max open files/ { print $4 }' "/proc/$FUSEREF_PID/limits" 2>/dev/null || true)
}

# ---------------------------------------------------------------- sbxfs

mount_sbxfs() {
  unmount_fuse "$MNT_SBXFS" "$SBXFS_PID"
  SBXFS_PID=""
  "$SBXFS" -f -o "state_dir=$STATE$SBXFS_OPTS" "$MNT_SBXFS" </dev/null >>"$RUN/sbxfs.log" 2>&1 &
  SBXFS_PID=$!
  wait_mount "sbxfs mount" "$SBXFS_PID" test -e "$MNT_SBXFS/ctl" ||
    { tail -n 20 "$RUN/sbxfs.log" >&2; die "sbxfs did not mount (log: $RUN/sbxfs.log)"; }
}

box_state() { timeout 10 head -n1 "$1/ctl" 2>/dev/null || true; }

# Make sure the sandbox directory $1 (default: the sbxfs target's) runs.
ensure_started() {
  local box=${1:-$BOX} st i
  st=$(box_state "$box")
  [[ $st == running* ]] && return 0
  timeout 120 bash -c 'echo start > "$1"' _ "$box/ctl" ||
    die "$box: 'start' failed (state '$st'; err: $(timeout 5 cat "$box/err" 2>/dev/null))"
  for ((i = 0; i < 100; i++)); do
    st=$(box_state "$box")
    [[ $st == running* ]] && return 0
    sleep 0.1
  done
  die "$box: sandbox not running after start (state '$st')"
}

setup_sbxfs() {
  log "mounting sbxfs (copy of $SBXFS_SRC), state in $STATE"
  mount_sbxfs
  timeout 60 mkdir "$BOX" || die "sbxfs: mkdir $BOX failed"
  ensure_started
  local dst=$BOX/root/tmp/corpus
  log "copying the corpus into the sandbox (cp -a through the mount)"
  timeout 60 mkdir -p "$dst" || die "sbxfs: mkdir $dst failed"
  if ! timeout "$OP_TIMEOUT" cp -a "$CORPUS/include" "$CORPUS/big.bin" "$dst/" 2>>"$RUN/ops.err"; then
    log "cp -a into the sandbox failed; retrying with cp -r --preserve=mode,timestamps"
    timeout "$OP_TIMEOUT" rm -rf "$dst/include" "$dst/big.bin" || true
    timeout "$OP_TIMEOUT" cp -r --preserve=mode,timestamps "$CORPUS/include" "$CORPUS/big.bin" "$dst/" ||
      die "sbxfs: copying the corpus in failed"
  fi
  local n sz
  n=$(timeout "$OP_TIMEOUT" find "$dst/include" | wc -l)
  sz=$(timeout 60 stat -c %s "$dst/big.bin")
  [[ $n -eq $CORPUS_FILES ]] || die "sbxfs: corpus copy has $n entries, expected $CORPUS_FILES"
  [[ $sz -eq $((BIG_MB * 1024 * 1024)) ]] || die "sbxfs: big.bin copy has $sz bytes"
}

# ---------------------------------------------------------------- remote targets

# Their emulators, relays, mounts and request counts.
# shellcheck source=bench/remote.sh
. "$HERE/remote.sh"

# ---------------------------------------------------------------- operations

# Paths per target: the tree to walk, the big file, where cp -r copies go.
target_paths() {
  case $1 in
    native) TREE=$CORPUS/include BIG=$CORPUS/big.bin DEST=$SCRATCH/native ;;
    sshfs)  TREE=$MNT_SSHFS/corpus/include BIG=$MNT_SSHFS/corpus/big.bin DEST=$MNT_SSHFS/scratch/sshfs ;;
    fuseref) TREE=$MNT_FUSEREF/corpus/include BIG=$MNT_FUSEREF/corpus/big.bin
             DEST=$MNT_FUSEREF/scratch/fuseref ;;
    sbxfs)  TREE=$BOX/root/tmp/corpus/include BIG=$BOX/root/tmp/corpus/big.bin DEST=$BOX/root/tmp ;;
    *)      local b; b=$(remote_box "$1")
            TREE=$b/root/tmp/corpus/include BIG=$b/root/tmp/corpus/big.bin DEST=$b/root/tmp ;;
  esac
}

# Remote targets that cannot make symlinks (EPERM), as docs/providers.md says.
NO_SYMLINKS="daytona"
makes_symlinks() { [[ " $NO_SYMLINKS " != *" $1 "* ]]; }

# Targets with sandboxes (the exec operation) and their sandbox directory.
has_exec() { [[ $1 == sbxfs || $1 == docker-cp ]] || is_remote "$1"; }
# Does target $1 do operation $2?  docker-cp copies and runs; it has no
# tree to walk.
does_op() {
  case $2 in
    exec) has_exec "$1" ;;
    find|lsR|du|grep) [[ $1 != docker-cp ]] ;;
    *) true ;;
  esac
}
box_of() { if is_remote "$1"; then remote_box "$1"; else echo "$BOX"; fi; }

# The shell command for operation $2 on target $1; $3 names a cp destination.
op_cmd() {
  local q
  if [[ $1 == docker-cp ]]; then
    q=$(podman_cli)
    case $2 in
      cat)  printf '%s cp bench:/tmp/corpus/big.bin -' "$q" ;;
      get)  printf '%s cp bench:/tmp/corpus/include %q' "$q" "$GOT/$1/$3" ;;
      cp)   printf '%s cp %q bench:/tmp/%q' "$q" "$CORPUS/include" "$3" ;;
      exec) printf '%s exec bench true' "$q" ;;
    esac
    return
  fi
  target_paths "$1"
  case $2 in
    find) printf 'find %q' "$TREE" ;;
    lsR)  printf 'ls -lR %q' "$TREE" ;;
    du)   printf 'du -s %q' "$TREE" ;;
    grep) printf 'grep -r -- %q %q || [ $? -eq 1 ]' "$PATTERN" "$TREE" ;;
    cat)  printf 'cat %q' "$BIG" ;;
    get)  printf 'cp -r %q %q' "$TREE" "$GOT/$1/$3" ;;
    cp)   if ! makes_symlinks "$1"; then
            # A provider that cannot make symlinks (EPERM): one
            # "cannot create symbolic link" per symlink of the corpus is
            # expected. cp's stderr is kept in T-cp.log; other lines
            # also go to ops.err, and only they make the copy fail.
            local e=$RUN/$1-cp.err s='cannot create symbolic link'
            printf 'cp -r %q %q 2>%q; rc=$?; cat %q >>%q; ' \
              "$CORPUS/include" "$DEST/$3" "$e" "$e" "$RUN/$1-cp.log"
            printf '[ $rc -eq 0 ] || { ! grep -v -e %q %q >&2 && [ "$(grep -c -e %q %q)" -le %d ]; }' \
              "$s" "$e" "$s" "$e" "$CORPUS_SYMLINKS"
          else
            printf 'cp -r %q %q' "$CORPUS/include" "$DEST/$3"
          fi ;;
    exec) q=$(printf %q "$(box_of "$1")/exec"); printf 'echo true > %s; cat %s' "$q" "$q" ;;
  esac
}

# Remove a cp destination, outside the timing. Native, sshfs and fuseref
# copies are removed on the host directly, remote ones on the emulator's
# side; sbxfs copies through the mount.
remove_copy() {
  local t=$1 name=$2
  case $t in
    native) rm -rf "$SCRATCH/native/$name" ;;
    sshfs)  rm -rf "$SCRATCH/sshfs/$name" ;;
    fuseref) rm -rf "$SCRATCH/fuseref/$name" ;;
    sbxfs)  timeout "$OP_TIMEOUT" rm -rf "$BOX/root/tmp/$name" ||
              log "sbxfs: removing $name failed" ;;
    docker-cp) rm -rf --one-file-system "${SBX_DIR[docker]}/tmp/$name" ;;
    *)      rm -rf --one-file-system "${SBX_DIR[$t]}/tmp/$name" ;;
  esac
}

# Time one shell command; sets ELAPSED (seconds, 6 decimals) and OPRC.
time_cmd() {
  local out rc=0
  # In the background and waited for, so that a signal to this script is
  # handled at once (timeout runs in a process group of its own, so Ctrl-C
  # does not reach it); cleanup() then stops it through OP_PID.
  timeout -k 5 "$OP_TIMEOUT" bash -c '
      s=$EPOCHREALTIME
      { eval "$1"; } >/dev/null 2>>"$2"
      rc=$?
      e=$EPOCHREALTIME
      echo "$rc ${s/./} ${e/./}"' _ "$1" "$RUN/ops.err" >"$RUN/op.out" &
  OP_PID=$!
  wait "$OP_PID" || rc=$?
  OP_PID=""
  out=$(<"$RUN/op.out")
  if [[ $out =~ ^([0-9]+)\ ([0-9]+)\ ([0-9]+)$ ]]; then
    OPRC=${BASH_REMATCH[1]}
    local us=$((BASH_REMATCH[3] - BASH_REMATCH[2]))
    ELAPSED=$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))
  else
    OPRC=$((rc ? rc : 1))
    ELAPSED=$OP_TIMEOUT.000000
  fi
  if ((OPRC != 0)); then
    log "FAILED (rc $OPRC): $1"
    printf '%s rc=%s: %s\n' "$(date +%T)" "$OPRC" "$1" >>"$RUN/ops.err"
  fi
}

RESULTS_TSV=$RUN/results.tsv
record() {  # target op phase run
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$ELAPSED" "$OPRC" >>"$RESULTS_TSV"
}

fresh_mount() {
  case $1 in
    native|docker-cp) ;;
    sshfs) mount_sshfs ;;
    fuseref) mount_fuseref ;;
    sbxfs) mount_sbxfs ;;
    *) mount_remote "$1" ;;
  esac
}

# ---------------------------------------------------------------- run

if has_target sshfs; then start_sshd; mount_sshfs; fi
if has_target fuseref; then build_fuseref; mount_fuseref; fi
if has_target sbxfs; then setup_sbxfs; fi
for t in $TARGETS; do is_remote "$t" && setup_remote "$t"; done
mkdir -p "$SCRATCH/native" "$SCRATCH/sshfs" "$SCRATCH/fuseref"
for t in $TARGETS; do mkdir -p "$GOT/$t"; done
printf 'target\top\tphase\trun\tseconds\trc\n' >"$RESULTS_TSV"
printf 'target\top\tphase\trun\troute\tcount\n' >"$REQUESTS_TSV"

# Time operation $2 on target $1 ($3: cp destination) and record it as phase
# $4 of run $5; for remote targets, count the requests it made.
timed() {
  local counter
  counter=$(counter_of "$1")
  [[ -n $counter ]] && emu_reset "$counter"
  time_cmd "$(op_cmd "$1" "$2" "$3")"
  record "$1" "$2" "$4" "$5"
  [[ -n $counter ]] && emu_record "$counter" "$1" "$2" "$4" "$5"
  return 0
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "corpus: $CORPUS_FILES entries, $CORPUS_MIB MiB in include/, big.bin $BIG_MB MiB; $RUNS runs; targets: $TARGETS"
for ((r = 1; r <= RUNS; r++)); do
  # Rotate which target goes first in each run, so that none always runs
  # right after the drop of another target's work.
  order=()
  for ((i = 0; i < ${#TARGET_LIST[@]}; i++)); do
    order+=("${TARGET_LIST[(i + r - 1) % ${#TARGET_LIST[@]}]}")
  done
  for op in $OPS; do
    for t in "${order[@]}"; do
      does_op "$t" "$op" || continue
      fresh_mount "$t"
      [[ $t == sbxfs && ( $op == exec || $op == cp ) ]] && ensure_started
      # root/ of a remote sandbox needs it started, for every operation.
      is_remote "$t" && ensure_started "$(remote_box "$t")"
      [[ $t == docker-cp ]] && ensure_started "$(remote_box docker)"
      drop_caches

      timed "$t" "$op" "copy${r}c" cold "$r"
      cold=$ELAPSED
      if [[ $op == exec ]]; then
        for ((k = 1; k <= EXEC_RUNS; k++)); do
          timed "$t" exec "" warm "$r"
        done
      else
        timed "$t" "$op" "copy${r}w" warm "$r"
      fi
      log "run $r/$RUNS $op $t: cold ${cold}s warm ${ELAPSED}s"
      if [[ $op == cp ]]; then
        remove_copy "$t" "copy${r}c"
        remove_copy "$t" "copy${r}w"
      elif [[ $op == get ]]; then
        rm -rf "$GOT/$t/copy${r}c" "$GOT/$t/copy${r}w"
      fi
    done
  done
done

# ---------------------------------------------------------------- report

META=$RUN/meta.tsv
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
: >"$META"
meta command "$CMDLINE"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta kernel "$(uname -r)"
meta cpu "$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
meta mem_gib "$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
meta os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
meta fs "$(findmnt -n -o FSTYPE --target "$DATA" 2>/dev/null || echo unknown)"
meta fuse "libfuse $(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null || fusermount3 --version 2>&1 | head -n1)"
if has_target sshfs; then
  meta sshfs "$(sshfs --version 2>/dev/null | grep -m1 -i 'sshfs version' || echo 'sshfs ?'), $(ssh -V 2>&1 | cut -d, -f1)"
  meta sshfs_opts "-o IdentityFile=...,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,port=$SSH_PORT -o $SSHFS_EXTRA"
fi
if has_target fuseref; then
  meta fuseref "passthrough_ll from libfuse3-dev $(dpkg-query -W -f='${Version}' libfuse3-dev 2>/dev/null || echo '?'), libfuse $(pkg-config --modversion fuse3 2>/dev/null || echo '?')"
  meta fuseref_opts "$FUSEREF_OPTS"
  meta fuseref_nofile "${FUSEREF_NOFILE:-?}"
fi
if uses_sbxfs; then
  meta sbxfs "$(timeout 10 "$SBXFS" --version 2>&1 | head -n1 || true)"
  meta git "$SBXFS_GIT"
fi
if uses_remote; then
  meta python "Python $(/usr/bin/python3 -c 'import sys, aiohttp; print("%d.%d.%d" % sys.version_info[:3], "aiohttp", aiohttp.__version__)')"
  meta corpus_symlinks "$CORPUS_SYMLINKS"
  meta corpus_entries "$CORPUS_FILES"
fi
for t in $TARGETS; do
  is_remote "$t" || continue
  meta "${t}_emulator" "tests/emulators/$(emu_name "$t").py from git ${EMU_GIT[$t]:-?}"
  meta "${t}_entries" "${SBX_ENTRIES[$t]}"
  if ! makes_symlinks "$t"; then
    meta "${t}_cp_symlink_errors" "$(cat "$RUN/$t-cp.log" 2>/dev/null | grep -c 'cannot create symbolic link' || true)"
    meta "${t}_cp_copies" "$(awk -F'\t' -v t="$t" '$1 == t && $2 == "cp"' "$RESULTS_TSV" | wc -l)"
  fi
done
has_target docker-cp && meta docker_cp "$(podman --version) as a client (\`podman --url unix://SOCKET\`)"
meta corpus "$CORPUS_SRC copy: $CORPUS_FILES entries, $CORPUS_MIB MiB; big file $BIG_MB MiB"
meta runs "$RUNS"
meta exec_runs "$EXEC_RUNS"
meta drop_caches "$DROP_OK"
meta targets "$TARGETS"
meta pattern "$PATTERN"
meta latency_ms "$LATENCY_MS"
meta load "$LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min)"

stamp=$(date +%Y%m%d-%H%M%S)
cp "$RESULTS_TSV" "$RESULTS/$stamp.tsv"
cp "$META" "$RESULTS/$stamp.meta.tsv"
REPORT_ARGS=()
if uses_remote; then
  cp "$REQUESTS_TSV" "$RESULTS/$stamp.requests.tsv"
  REPORT_ARGS=(--requests "$REQUESTS_TSV")
fi
/usr/bin/python3 "$HERE/report.py" "${REPORT_ARGS[@]}" "$RESULTS_TSV" "$META" "$RESULTS/$stamp.md"
log "report saved to $RESULTS/$stamp.md, samples in $RESULTS/$stamp.tsv, settings in $RESULTS/$stamp.meta.tsv"
if [[ -s $RUN/ops.err ]]; then
  cp "$RUN/ops.err" "$RESULTS/$stamp.err"
  log "operations wrote to stderr; see $RESULTS/$stamp.err"
fi
