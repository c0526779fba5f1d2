#!/usr/bin/env bash
# bench/run.sh: time the same file operations on a native directory, through
# sbxfs (local provider) and through sshfs to 127.0.0.1, side by side, and
# print a table of medians and ratios (plain text, then Markdown for
# docs/performance.md).
#
# Run as root from anywhere:   bench/run.sh
# Quick run:                   BIG_MB=64 RUNS=3 bench/run.sh
# Without sbxfs (no binary):   TARGETS="native sshfs" bench/run.sh
#
# Environment (defaults in brackets):
#   BENCH_DIR     work directory: corpus, scratch, results [/var/tmp/sbxfs-bench]
#   BIG_MB        size of the big file in MiB [512]
#   RUNS          runs per operation; the median is reported [5]
#   EXEC_RUNS     exec round trips per warm exec sample [20]
#   SBXFS         the sbxfs binary [REPO/build/sbxfs]
#   SSH_PORT      first loopback port to try for our own sshd [2222]
#   TARGETS       any of: native sbxfs sshfs [all three]
#   OPS           any of: find lsR grep cat cp exec [all six]
#   OP_TIMEOUT    seconds before one timed operation is killed [900]
#   MOUNT_TIMEOUT seconds to wait for a mount to appear [30]
#   KEEP_RUN=1    keep the per-run directory (logs, sbxfs state) afterwards
#
# Cold = a fresh mount (unmount + remount of the FUSE target) and the kernel's
# page, dentry and inode caches dropped (sync; echo 3 > drop_caches), for all
# three targets alike. Warm = the same operation again at once on that mount.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

usage() { sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
esac

# The exact command line, with the overrides that were set, for the report.
CMDLINE=""
for v in BENCH_DIR BIG_MB RUNS EXEC_RUNS SBXFS SSH_PORT TARGETS OPS OP_TIMEOUT MOUNT_TIMEOUT; do
  if [[ -n ${!v+x} ]]; then CMDLINE+="$v=$(printf %q "${!v}") "; fi
done
if [[ $(pwd -P) == "$REPO" ]]; then CMDLINE+="bench/run.sh"; else CMDLINE+="$0"; fi

BENCH_DIR=${BENCH_DIR:-/var/tmp/sbxfs-bench}
BIG_MB=${BIG_MB:-512}
RUNS=${RUNS:-5}
EXEC_RUNS=${EXEC_RUNS:-20}
SBXFS=${SBXFS:-$REPO/build/sbxfs}
SSH_PORT=${SSH_PORT:-2222}
TARGETS=${TARGETS:-native sbxfs sshfs}
TARGETS=${TARGETS//,/ }
OP_TIMEOUT=${OP_TIMEOUT:-900}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-30}
KEEP_RUN=${KEEP_RUN:-0}
PATTERN=zzqqxx_nomatch
OPS=${OPS:-find lsR grep cat cp exec}
OPS=${OPS//,/ }

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages, starts sshd and drops caches)"
for t in $TARGETS; do
  case $t in native|sbxfs|sshfs) ;; *) die "unknown target '$t' in TARGETS" ;; esac
done
for op in $OPS; do
  case $op in find|lsR|grep|cat|cp|exec) ;; *) die "unknown operation '$op' in OPS" ;; esac
done
read -r -a TARGET_LIST <<<"$TARGETS"
for v in BIG_MB RUNS EXEC_RUNS SSH_PORT OP_TIMEOUT MOUNT_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $BENCH_DIR == /* ]] || BENCH_DIR="$(pwd)/$BENCH_DIR"
[[ $BENCH_DIR != *[[:space:]]* ]] || die "BENCH_DIR must not contain spaces"
if has_target sbxfs; then
  [[ $SBXFS == /* ]] || SBXFS="$(pwd)/$SBXFS"
  [[ -x $SBXFS ]] || die "no sbxfs binary at '$SBXFS' (build it: meson setup build && ninja -C build; or set SBXFS, or TARGETS='native sshfs')"
fi
[[ -e /dev/fuse ]] || die "/dev/fuse is missing"

# ---------------------------------------------------------------- packages

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

DATA=$BENCH_DIR/data           # exported by sshfs; holds corpus and scratch
CORPUS=$DATA/corpus            # include/ (copy of /usr/include) and big.bin
SCRATCH=$DATA/scratch          # cp -r destinations for native and sshfs
RUN=$BENCH_DIR/run             # per-invocation: sshd, mounts, sbxfs state, logs
RESULTS=$BENCH_DIR/results     # reports kept across invocations
MNT_SBXFS=$RUN/mnt/sbxfs
MNT_SSHFS=$RUN/mnt/sshfs
STATE=$RUN/state
BOX=$MNT_SBXFS/bench
SBXFS_PID=""
SSHFS_PID=""
SSHD_PID=""
OP_PID=""

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
  if [[ -n $SSHD_PID ]]; then
    kill -TERM "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null
  fi
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
mkdir -p "$RUN/ssh" "$MNT_SBXFS" "$MNT_SSHFS" "$STATE" "$SCRATCH" "$RESULTS"
if has_target sbxfs; then
  # Run a private copy, so a rebuild during the benchmark changes nothing.
  SBXFS_SRC=$SBXFS
  SBXFS=$RUN/sbxfs
  cp "$SBXFS_SRC" "$SBXFS"
  SBXFS_GIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no commit')
fi
: >"$RUN/ops.err"

# ---------------------------------------------------------------- corpus

build_corpus() {
  mkdir -p "$CORPUS"
  if [[ ! -e $CORPUS/.include-done ]]; then
    log "copying /usr/include into $CORPUS/include"
    rm -rf "$CORPUS/include"
    cp -a /usr/include "$CORPUS/include"
    touch "$CORPUS/.include-done"
  fi
  local want=$((BIG_MB * 1024 * 1024))
  if [[ ! -f $CORPUS/big.bin || $(stat -c %s "$CORPUS/big.bin") -ne $want ]]; then
    log "writing $BIG_MB MiB of random data to $CORPUS/big.bin"
    head -c "$want" /dev/urandom >"$CORPUS/big.bin.tmp"
    mv "$CORPUS/big.bin.tmp" "$CORPUS/big.bin"
  fi
  CORPUS_FILES=$(find "$CORPUS/include" | wc -l)
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
  unmount_fuse "$MNT_SSHFS" "$SSHFS_PID"
  SSHFS_PID=""
  sshfs -f "root@127.0.0.1:$DATA" "$MNT_SSHFS" \
    -o "IdentityFile=$RUN/ssh/id_ed25519,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,port=$SSH_PORT" \
    -o "$SSHFS_EXTRA" </dev/null >>"$RUN/sshfs.log" 2>&1 &
  SSHFS_PID=$!
  wait_mount "sshfs mount" "$SSHFS_PID" test -d "$MNT_SSHFS/corpus/include" ||
    { tail -n 20 "$RUN/sshfs.log" >&2; die "sshfs did not mount"; }
}

# ---------------------------------------------------------------- sbxfs

mount_sbxfs() {
  unmount_fuse "$MNT_SBXFS" "$SBXFS_PID"
  SBXFS_PID=""
  "$SBXFS" -f -o "state_dir=$STATE" "$MNT_SBXFS" </dev/null >>"$RUN/sbxfs.log" 2>&1 &
  SBXFS_PID=$!
  wait_mount "sbxfs mount" "$SBXFS_PID" test -e "$MNT_SBXFS/ctl" ||
    { tail -n 20 "$RUN/sbxfs.log" >&2; die "sbxfs did not mount (log: $RUN/sbxfs.log)"; }
}

box_state() { timeout 10 head -n1 "$BOX/ctl" 2>/dev/null || true; }

ensure_started() {
  local st i
  st=$(box_state)
  [[ $st == running* ]] && return 0
  timeout 120 bash -c 'echo start > "$1"' _ "$BOX/ctl" ||
    die "sbxfs: 'start' failed (state '$st'; err: $(timeout 5 cat "$BOX/err" 2>/dev/null))"
  for ((i = 0; i < 100; i++)); do
    st=$(box_state)
    [[ $st == running* ]] && return 0
    sleep 0.1
  done
  die "sbxfs: sandbox not running after start (state '$st')"
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

# ---------------------------------------------------------------- operations

# Paths per target: the tree to walk, the big file, where cp -r copies go.
target_paths() {
  case $1 in
    native) TREE=$CORPUS/include BIG=$CORPUS/big.bin DEST=$SCRATCH/native ;;
    sshfs)  TREE=$MNT_SSHFS/corpus/include BIG=$MNT_SSHFS/corpus/big.bin DEST=$MNT_SSHFS/scratch/sshfs ;;
    sbxfs)  TREE=$BOX/root/tmp/corpus/include BIG=$BOX/root/tmp/corpus/big.bin DEST=$BOX/root/tmp ;;
  esac
}

# The shell command for operation $2 on target $1; $3 names a cp destination.
op_cmd() {
  local q
  target_paths "$1"
  case $2 in
    find) printf 'find %q' "$TREE" ;;
    lsR)  printf 'ls -lR %q' "$TREE" ;;
    grep) printf 'grep -r -- %q %q || [ $? -eq 1 ]' "$PATTERN" "$TREE" ;;
    cat)  printf 'cat %q' "$BIG" ;;
    cp)   printf 'cp -r %q %q' "$CORPUS/include" "$DEST/$3" ;;
    exec) q=$(printf %q "$BOX/exec"); printf 'echo true > %s; cat %s' "$q" "$q" ;;
  esac
}

# Remove a cp destination, outside the timing. Native and sshfs copies are
# removed on the host directly; sbxfs copies through the mount.
remove_copy() {
  local t=$1 name=$2
  case $t in
    native) rm -rf "$SCRATCH/native/$name" ;;
    sshfs)  rm -rf "$SCRATCH/sshfs/$name" ;;
    sbxfs)  timeout "$OP_TIMEOUT" rm -rf "$BOX/root/tmp/$name" ||
              log "sbxfs: removing $name failed" ;;
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
    native) ;;
    sshfs) mount_sshfs ;;
    sbxfs) mount_sbxfs ;;
  esac
}

# ---------------------------------------------------------------- run

if has_target sshfs; then start_sshd; mount_sshfs; fi
if has_target sbxfs; then setup_sbxfs; fi
mkdir -p "$SCRATCH/native" "$SCRATCH/sshfs"
printf 'target\top\tphase\trun\tseconds\trc\n' >"$RESULTS_TSV"

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
      [[ $op == exec && $t != sbxfs ]] && continue
      fresh_mount "$t"
      [[ $t == sbxfs && ( $op == exec || $op == cp ) ]] && ensure_started
      drop_caches

      time_cmd "$(op_cmd "$t" "$op" "copy${r}c")"
      record "$t" "$op" cold "$r"
      cold=$ELAPSED
      if [[ $op == exec ]]; then
        for ((k = 1; k <= EXEC_RUNS; k++)); do
          time_cmd "$(op_cmd "$t" exec)"
          record "$t" "$op" warm "$r"
        done
      else
        time_cmd "$(op_cmd "$t" "$op" "copy${r}w")"
        record "$t" "$op" warm "$r"
      fi
      log "run $r/$RUNS $op $t: cold ${cold}s warm ${ELAPSED}s"
      if [[ $op == cp ]]; then
        remove_copy "$t" "copy${r}c"
        remove_copy "$t" "copy${r}w"
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
if has_target sbxfs; then
  meta sbxfs "$(timeout 10 "$SBXFS" --version 2>&1 | head -n1 || true)"
  meta git "$SBXFS_GIT"
fi
meta corpus "/usr/include copy: $CORPUS_FILES entries, $CORPUS_MIB MiB; big file $BIG_MB MiB"
meta runs "$RUNS"
meta exec_runs "$EXEC_RUNS"
meta drop_caches "$DROP_OK"
meta targets "$TARGETS"
meta pattern "$PATTERN"

stamp=$(date +%Y%m%d-%H%M%S)
cp "$RESULTS_TSV" "$RESULTS/$stamp.tsv"
/usr/bin/python3 "$HERE/report.py" "$RESULTS_TSV" "$META" "$RESULTS/$stamp.md"
log "report saved to $RESULTS/$stamp.md, samples in $RESULTS/$stamp.tsv"
if [[ -s $RUN/ops.err ]]; then
  cp "$RUN/ops.err" "$RESULTS/$stamp.err"
  log "operations wrote to stderr; see $RESULTS/$stamp.err"
fi
