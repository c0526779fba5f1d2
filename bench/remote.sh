# bench/remote.sh: the remote targets of bench/run.sh, which sources it:
# each one's emulator (real Podman behind a counting proxy for docker), the
# relay in front of it with LATENCY_MS, its sbxfs mount with a sandbox
# "bench" holding the corpus, and the request counts around each timed
# operation.  It uses run.sh's variables and helpers (RUN, CORPUS, log,
# die, start_relay, wait_mount, ...); not to be run on its own.

emu_url() { printf 'http://127.0.0.1:%s%s' "${EMU_PORT[$1]}" "$2"; }
# curl to emulator $1's route $2 (the engine's is a Unix socket).
emu_curl() {
  local t=$1 route=$2; shift 2
  if [[ $t == docker ]]; then
    curl -sf -m 10 --unix-socket "${EMU_SOCK[$t]}" "$@" "http://engine$route"
  else
    curl -sf -m 10 "$@" "$(emu_url "$t" "$route")"
  fi
}

# What emulator $1 is told to accept.
emu_args() {
  case $1 in
    daytona) printf '%s\n' --api-key "${EMU_KEY[$1]}" ;;
    rexec)   printf '%s\n' --token "${EMU_KEY[$1]}" --mode new ;;
    vtrix)   printf '%s\n' --token "${EMU_KEY[$1]}" --project bench-project ;;
    microsandbox) printf '%s\n' --delay 0 ;;
    microsandbox-cloud) printf '%s\n' --delay 0 --cloud-key "${EMU_KEY[$1]}" ;;
  esac
}

# The image of docker's sandbox: the engine's own, busybox.
DOCKER_IMAGE=localhost/sbxfs-busybox:latest

# The URL of emulator $1's route $2 as its mount reaches it: through the
# relay with LATENCY_MS.
mount_url() {
  if [[ -n ${RELAY_AT[$1]:-} ]]; then
    printf 'http://127.0.0.1:%s%s' "${RELAY_AT[$1]}" "$2"
  else
    emu_url "$1" "$2"
  fi
}

# The environment (NAME=value lines) of an sbxfs mount that uses emulator $1.
remote_env() {
  local sock=${EMU_SOCK[$1]:-}
  [[ $1 == docker && -n ${RELAY_AT[$1]:-} ]] && sock=${RELAY_AT[$1]}
  case $1 in
    daytona) printf '%s\n' "DAYTONA_API_URL=$(mount_url "$1" /api)" "DAYTONA_API_KEY=${EMU_KEY[$1]}" ;;
    rexec)   printf '%s\n' "REXEC_URL=$(mount_url "$1" "")" "REXEC_TOKEN=${EMU_KEY[$1]}" ;;
    vtrix)   printf '%s\n' "VTRIX_URL=$(mount_url "$1" "")" "VTRIX_TOKEN=${EMU_KEY[$1]}" \
               VTRIX_PROJECT_ID=bench-project VTRIX_USER_ID=bench-user ;;
    docker)  printf '%s\n' "DOCKER_HOST=unix://$sock" ;;
    microsandbox) printf '%s\n' "PATH=$RUN/bin:$PATH" "MSB_HOME=$RUN/$1-emu" ;;
    # The cloud: REST and the agent's WebSocket, through the relay.
    microsandbox-cloud) printf '%s\n' "MSB_HOME=$RUN/$1-emu" MSB_BACKEND=cloud \
                          "MSB_API_URL=$(mount_url "$1" "")" "MSB_API_KEY=${EMU_KEY[$1]}" ;;
  esac
}

# With LATENCY_MS, a relay in front of emulator $1 for its mount.
relay_emulator() {
  local t=$1
  ((LATENCY_MS > 0)) || return 0
  # microsandbox's backend is this machine: no distance to emulate.
  [[ $t == microsandbox ]] && { log "$t: local sockets, no relay"; return 0; }
  if [[ $t == docker ]]; then
    start_relay "$t" --to-unix "${EMU_SOCK[$t]}"
  else
    start_relay "$t" --to "127.0.0.1:${EMU_PORT[$t]}"
  fi
  # Daytona hands out toolbox URLs: they must name the relay too.
  if [[ $t == daytona ]]; then
    emu_curl "$t" /_emu/advertise -X POST -d "{\"port\": ${RELAY_AT[$t]}}" >/dev/null ||
      die "$t: the emulator would not advertise the relay"
  fi
}

start_engine() {
  local t=$1 i sock=""
  /usr/bin/python3 "$RUN/engine.py" --root "$RUN/$t-emu" \
    </dev/null >"$RUN/$t-emu.port" 2>>"$RUN/$t-emu.log" &
  EMU_PID[$t]=$!
  for ((i = 0; i < MOUNT_TIMEOUT * 40; i++)); do
    { read -r sock <"$RUN/$t-emu.port"; } 2>/dev/null || sock=""
    [[ $sock == /*.sock ]] && break
    kill -0 "${EMU_PID[$t]}" 2>/dev/null ||
      { tail -n 20 "$RUN/$t-emu.log" >&2; die "the $t engine exited"; }
    sleep 0.1
  done
  [[ $sock == /*.sock ]] || die "the $t engine did not answer"
  EMU_SOCK[$t]=$sock
  log "$t: Podman behind a counting proxy (pid ${EMU_PID[$t]}, copy of tests/emulators/engine.py) on $sock"
}

start_emulator() {
  local t=$1 i port args=()
  mkdir -p "$RUN/$t-emu"
  [[ $t == docker ]] && { start_engine "$t"; return; }
  EMU_KEY[$t]=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  [[ $t == rexec ]] && EMU_KEY[$t]=rexec_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  mapfile -t args < <(emu_args "$t")
  # It prints its port on stdout once listening (the file keeps stdout
  # open) and one line per request on stderr.
  /usr/bin/python3 "$RUN/$(emu_name "$t").py" --root "$RUN/$t-emu" --port 0 "${args[@]}" \
    </dev/null >"$RUN/$t-emu.port" 2>>"$RUN/$t-emu.log" &
  EMU_PID[$t]=$!
  for ((i = 0; i < MOUNT_TIMEOUT * 10; i++)); do
    port=""
    { read -r port <"$RUN/$t-emu.port"; } 2>/dev/null || port=""
    [[ $port =~ ^[0-9]+$ ]] && break
    kill -0 "${EMU_PID[$t]}" 2>/dev/null ||
      { tail -n 20 "$RUN/$t-emu.log" >&2; die "the $t emulator exited"; }
    sleep 0.1
  done
  [[ $port =~ ^[0-9]+$ ]] || die "the $t emulator did not listen after ${MOUNT_TIMEOUT}s"
  EMU_PORT[$t]=$port
  log "$t emulator (pid ${EMU_PID[$t]}, copy of tests/emulators/$(emu_name "$t").py) on 127.0.0.1:$port"
}

mount_remote() {
  local t=$1 mnt env=()
  mnt=$(remote_mnt "$t")
  unmount_fuse "$mnt" "${MOUNT_PID[$t]:-}"
  mapfile -t env < <(remote_env "$t")
  local opts=("provider=$(provider_of "$t")")
  [[ $t == docker ]] && opts+=("image=$DOCKER_IMAGE")
  env "${env[@]}" "$SBXFS" -f -o "$(IFS=,; echo "${opts[*]}")" -o "state_dir=$RUN/state-$t$SBXFS_OPTS" "$mnt" \
    </dev/null >>"$RUN/$t.log" 2>&1 &
  MOUNT_PID[$t]=$!
  wait_mount "$t mount" "${MOUNT_PID[$t]}" test -e "$mnt/ctl" ||
    { tail -n 20 "$RUN/$t.log" >&2; die "sbxfs ($t) did not mount (log: $RUN/$t.log)"; }
}

setup_remote() {
  local t=$1 box dir sz
  box=$(remote_box "$t")
  start_emulator "$t"
  relay_emulator "$t"
  log "mounting sbxfs -o provider=$t (copy of $SBXFS_SRC), state in $RUN/state-$t"
  mount_remote "$t"
  timeout 120 mkdir "$box" || die "$t: mkdir $box failed"
  ensure_started "$box"
  dir=$(emu_curl "$t" /_emu/sandbox/bench |
          /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["dir"])') ||
    die "$t: no sandbox 'bench' on the emulator"
  [[ -d $dir/tmp ]] || die "$t: the sandbox's directory '$dir' has no tmp/"
  SBX_DIR[$t]=$dir
  # Server side, the way sshfs's corpus lives on its server.
  log "copying the corpus into the sandbox on the emulator's side ($dir/tmp/corpus)"
  mkdir -p "$dir/tmp/corpus"
  cp -a "$CORPUS/include" "$CORPUS/big.bin" "$dir/tmp/corpus/" ||
    die "$t: copying the corpus in failed"
  # Daytona's file API follows symlinks (absolute ones inside the
  # sandbox), so a tree may have a different number of entries through a
  # remote target.
  SBX_ENTRIES[$t]=$(timeout "$OP_TIMEOUT" find "$box/root/tmp/corpus/include" | wc -l)
  sz=$(timeout 60 stat -c %s "$box/root/tmp/corpus/big.bin")
  [[ $sz -eq $((BIG_MB * 1024 * 1024)) ]] || die "$t: big.bin has $sz bytes through the mount"
  log "$t: the corpus shows ${SBX_ENTRIES[$t]} entries through the mount ($CORPUS_FILES on the host)"
}

# Request counts around each timed remote operation, one row per route:
# target op phase run route count (route "total": all of them).
REQUESTS_TSV=$RUN/requests.tsv
emu_reset() {
  emu_curl "$1" /_emu/reset -X POST >/dev/null ||
    log "$1: POST /_emu/reset failed"
}
STATS_ROWS_PY='
import json, sys
s = json.load(sys.stdin)
prefix = sys.argv[1]
print("%s\ttotal\t%d" % (prefix, s.get("total", 0)))
for key, n in sorted(s.get("routes", {}).items()):
    if n:
        print("%s\t%s\t%d" % (prefix, key.replace("\t", " "), n))
'
emu_record() {  # emulator's target, then the row's: target op phase run
  local js rows emu=$1
  shift
  if js=$(emu_curl "$emu" /_emu/stats) &&
     rows=$(/usr/bin/python3 -c "$STATS_ROWS_PY" "$(printf '%s\t%s\t%s\t%s' "$@")" <<<"$js"); then
    printf '%s\n' "$rows" >>"$REQUESTS_TSV"
  else
    log "$emu: GET /_emu/stats failed"
  fi
}

# The remote target whose emulator counts target $1's requests: itself,
# or docker for docker-cp (the same engine); "" for none.
counter_of() {
  if is_remote "$1"; then echo "$1"; elif [[ $1 == docker-cp ]]; then echo docker; fi
}

# Podman's own client on the engine of docker, as its mount reaches it
# (through the relay with LATENCY_MS): what `docker cp` and `docker exec`
# cost, on the same container.
podman_cli() {
  local sock=${RELAY_AT[docker]:-${EMU_SOCK[docker]}}
  printf 'podman --url unix://%q' "$sock"
}

