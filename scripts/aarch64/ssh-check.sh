#!/usr/bin/env bash
# The "Pi over ssh" step of check-aarch64.sh: an sshd serves the arm64 root as a device
# (ChrootDirectory: the host's OpenSSH does the crypto natively, every command of the
# session runs emulated inside the root), and the host drives it as a user drives a Pi:
# `edgecls bench --host` on the models, then `edgecls run --remote` on one model, whose
# labels are compared with the host's own run. Emulated timings mean nothing; the flow and
# the labels are what this checks.
#
# Usage: ssh-check.sh ROOT DEVICE_PYTHON DEVICE_IMAGES WORK HOST_PYTHON EXPECT_MACHINE \
#          LABEL_MODEL HOST_JSONL [--labels FILE] -- MODEL...
#   ROOT            the root the sessions run in ("/" for this machine itself, no chroot)
#   DEVICE_PYTHON   the device's interpreter with edgecls (a path inside ROOT)
#   DEVICE_IMAGES   the images folder as the device sees it (inside ROOT)
#   EXPECT_MACHINE  what the device's bench must report as its machine (aarch64)
#   LABEL_MODEL     the model run with `run --remote`; HOST_JSONL: the host's labels for it
# Environment: DEVICE_PYTHONPATH, when set, is the sessions' PYTHONPATH; TIE_MARGIN as in
# check-aarch64.sh. Sessions get HOME=/root inside a root (removed afterwards), else WORK/home.
# Prints summary rows "what|backend|frames|agreement|near-ties|status" on stdout; exit 0
# when every step passed, 1 when one failed, 3 when the step cannot run here (the reason
# is the row's status).
set -Eeuo pipefail

HELPERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$1" DEVICE_PYTHON="$2" DEVICE_IMAGES="$3" WORK="$4" HOST_PY="$5" EXPECT_MACHINE="$6"
LABEL_MODEL="$7" HOST_JSONL="$8"
shift 8
LABELS=()
if [[ "${1:-}" == --labels ]]; then LABELS=(--labels "$2"); shift 2; fi
[[ "${1:-}" == -- ]] && shift
MODELS=("$@")
SSH_DIR="$WORK/ssh"
SSHD_PID=""
if [[ "$ROOT" == / ]]; then DEVICE_HOME="$WORK/home"; else DEVICE_HOME=/root; fi

log() { printf '[check-aarch64] ssh: %s\n' "$*" >&2; }
row() { printf '%s|%s|%s|%s|%s|%s\n' "$@"; }
skip() { row "ssh device" - - - - "skipped: $1"; exit 3; }

find_sshd() {
  command -v sshd 2>/dev/null && return
  local candidate
  for candidate in /usr/sbin/sshd /usr/local/sbin/sshd; do [[ -x "$candidate" ]] && echo "$candidate" && return; done
  return 1
}

chroot_path_ok() {  # sshd's ChrootDirectory rule: every component root-owned, not group/world-writable
  local path="$1"
  while :; do
    [[ "$(stat -c '%u' "$path")" == 0 ]] || return 1
    (( (8#$(stat -c '%a' "$path") & 8#022) == 0 )) || return 1
    [[ "$path" == / ]] && return 0
    path="$(dirname "$path")"
  done
}

stop_sshd() {
  [[ -z "$SSHD_PID" ]] || kill "$SSHD_PID" 2>/dev/null || true
  [[ -z "$SSHD_PID" ]] || wait "$SSHD_PID" 2>/dev/null || true
  [[ "$ROOT" == / ]] || rm -rf "$ROOT$DEVICE_HOME/.edgecls"  # what the remote runs left on the "device"
}

start_sshd() {  # a key pair each for host and user, a config, sshd -D on a free port
  local sshd="$1" port chroot=none
  mkdir -p "$SSH_DIR"
  ssh-keygen -q -t ed25519 -N "" -f "$SSH_DIR/host_key"
  ssh-keygen -q -t ed25519 -N "" -f "$SSH_DIR/user_key"
  cp "$SSH_DIR/user_key.pub" "$SSH_DIR/authorized_keys"
  port="$("$HOST_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  [[ "$ROOT" == / ]] || chroot="$ROOT"
  mkdir -p "${ROOT%/}$DEVICE_HOME"
  local env="HOME=$DEVICE_HOME"
  [[ -z "${DEVICE_PYTHONPATH:-}" ]] || env+=" PYTHONPATH=$DEVICE_PYTHONPATH"
  cat >"$SSH_DIR/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $SSH_DIR/host_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
ChrootDirectory $chroot
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
LogLevel ERROR
SetEnv $env
EOF
  cat >"$SSH_DIR/ssh_config" <<EOF
Host aarch64-pi
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $SSH_DIR/user_key
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile $SSH_DIR/known_hosts
  GlobalKnownHostsFile /dev/null
EOF
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$SSH_DIR/host_key.pub")" >"$SSH_DIR/known_hosts"
  [[ "$(id -u)" != 0 ]] || mkdir -p /run/sshd  # privilege separation directory
  "$sshd" -D -e -f "$SSH_DIR/sshd_config" 2>"$SSH_DIR/sshd.log" &
  SSHD_PID=$!
  local tries
  for tries in $(seq 100); do
    kill -0 "$SSHD_PID" 2>/dev/null || { tail -3 "$SSH_DIR/sshd.log" >&2; return 1; }
    "$HOST_PY" -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

edgecls_here() { EDGECLS_SSH_CONFIG="$SSH_DIR/ssh_config" nice -n 5 "$HOST_PY" -m edgecls "$@"; }

bench_models() {  # bench --host on every model: passed, and measured on the expected machine
  local out="$WORK/ssh-bench.json" summary
  log "edgecls bench --host (${#MODELS[@]} models; emulated, slow)"
  edgecls_here bench "${MODELS[@]}" --host aarch64-pi --remote-python "$DEVICE_PYTHON" --install never \
    --runs 3 --warmup 1 --threads 1 --json "$out" >"$WORK/ssh-bench.log" 2>&1 || true
  if ! summary="$("$HOST_PY" - "$out" "$EXPECT_MACHINE" "${#MODELS[@]}" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
host = report["hosts"][0]
records = report["records"]
machines = {r["machine"].get("arch") for r in records}
ok = (host["status"] == "passed" and len(records) == int(sys.argv[3])
      and all(r["status"] == "passed" for r in records) and machines == {sys.argv[2]})
print(f"{len(records)} records, host {host['status']}, machine {'/'.join(sorted(map(str, machines)))}"
      + ("" if ok else f": {host.get('reason') or [r.get('reason') for r in records]}"))
sys.exit(0 if ok else 1)
EOF
  )"; then
    row "bench --host" "${#MODELS[@]} models" - - - "FAIL: ${summary:-no JSON, see $WORK/ssh-bench.log}"
    tail -5 "$WORK/ssh-bench.log" >&2
    return 1
  fi
  row "bench --host" "${#MODELS[@]} models" - - - "ok: $summary"
}

run_remote_labels() {  # run --remote: the device's labels, streamed back, against the host's
  local base out="$WORK/ssh-run.jsonl" compared
  base="$(basename "$LABEL_MODEL")"
  log "edgecls run --remote $base (emulated)"
  if ! edgecls_here run "$LABEL_MODEL" --remote aarch64-pi --remote-python "$DEVICE_PYTHON" \
      --source "$DEVICE_IMAGES" "${LABELS[@]}" >"$out.all" 2>"$WORK/ssh-run.log"; then
    row "run --remote $base" - - - - "FAIL: see $WORK/ssh-run.log"; tail -5 "$WORK/ssh-run.log" >&2
    return 1
  fi
  grep '^{"frame":' "$out.all" >"$out" || true  # the frames' lines, not the run's summary
  if compared="$("$HOST_PY" "$HELPERS/compare_jsonl.py" "$HOST_JSONL" "$out" --tie-margin "${TIE_MARGIN:-0.05}")"; then
    row "run --remote $base" - $compared "ok"
  else
    row "run --remote $base" - ${compared:-- - -} "FAIL: labels differ"
    return 1
  fi
}

main() {
  local sshd failed=0
  sshd="$(find_sshd)" || skip "no sshd on this machine (apt-get install openssh-server)"
  command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || skip "no ssh client (apt-get install openssh-client)"
  [[ "$ROOT" == / ]] || chroot_path_ok "$ROOT" || skip "sshd refuses to chroot into $ROOT: a folder on its path is not root-owned or is group/world-writable"
  trap stop_sshd EXIT
  start_sshd "$sshd" || { row "ssh device" - - - - "FAIL: sshd did not start (see $SSH_DIR/sshd.log)"; exit 1; }
  bench_models || failed=1
  run_remote_labels || failed=1
  return "$failed"
}

main
