#!/usr/bin/env bash
# Prove the edgecls runtime on aarch64 under user-mode emulation.
#
# Builds (or reuses) an arm64 Debian root with debootstrap + qemu-user-static, installs
# edgecls' own wheel with the runtime extras from real aarch64 wheels (no TensorFlow), runs
# `edgecls run --headless --jsonl` inside the chroot and on the host over the same images,
# and fails on any top-1 label difference. Not part of the default test run: it takes
# over ten minutes the first time (the emulated debootstrap second stage).
#
# Usage: sudo scripts/check-aarch64.sh [--python 3.11|3.13|all] [--keep] [options]
# Run with --help for the options. Exit codes: 0 every check agreed, 1 a check failed
# (label difference, install or run failure), 2 a precondition is missing or bad usage.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPERS="$REPO/scripts/aarch64"
HELPERS_IN_CHROOT=/opt/edgecls-check/helpers
# Test hooks (documented in docs/aarch64.md): simulate a missing precondition.
CHECK_UID="${EDGECLS_AARCH64_UID:-$(id -u)}"
PROC_FILESYSTEMS="${EDGECLS_AARCH64_PROC_FILESYSTEMS:-/proc/filesystems}"
PYPI_PROBE="${EDGECLS_AARCH64_PYPI_URL:-https://pypi.org/simple/pip/}"
CACHE="${EDGECLS_AARCH64_CACHE:-$REPO/.aarch64}"
MIRROR="${EDGECLS_AARCH64_MIRROR:-http://deb.debian.org/debian}"
HOST_PY="${EDGECLS_AARCH64_HOST_PYTHON:-$REPO/.venv/bin/python}"
SHARED="${EDGECLS_AARCH64_SHARED:-$(dirname "$REPO")/shared}"
BINFMT_DIR=/proc/sys/fs/binfmt_misc
ROOT_MARKER=.edgecls-root-complete
CHECK_DIR=/opt/edgecls-check          # inside the chroot
APT_TOOLS=(qemu-user-static debootstrap binfmt-support)
BASE_PLATFORMS=(manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux2014_aarch64 manylinux_2_17_aarch64)

PYTHONS=()
KEEP=0
DRY_RUN=0
ROOT_ONLY=0
IMAGES_PER_CLASS=3
TIE_MARGIN=0.05
RUN_OPENVINO=0
SSH_STEP=1
EXTRA_MODELS=()
BUILD_MODELS=1

BUILDING_ROOT=""     # temp root being built; removed on exit unless completed
MOUNTED_ROOTS=()     # roots whose /proc and /dev we mounted
WORK=""              # host work dir for this run
ROOT=""              # the arm64 root in use
RESULTS=""           # summary rows: model|backend|python|frames|agreement|status
FAILED=0

usage() {
  cat <<'EOF'
Usage: sudo scripts/check-aarch64.sh [--python 3.11|3.13|all] [--keep] [options]

Builds or reuses an arm64 Debian root under .aarch64/ (bookworm for Python 3.11, trixie for
3.13), installs edgecls[runtime-tflite,runtime-onnx] (and runtime-openvino when an aarch64
wheel exists) from aarch64 wheels with no TensorFlow, runs `edgecls run --headless` inside
the chroot and on the host, and fails on any top-1 label difference.

Options:
  --python V        3.11 (default), 3.13 or all; may be repeated
  --keep            keep the work folder (wheels, JSONL outputs, chroot venv) for inspection
  --model PATH      also check this model (.tflite/.onnx/.xml); may be repeated
  --no-build-models do not train + export the small INT8 TFLite/ONNX/OpenVINO models on the host
  --run-openvino    also classify with OpenVINO in the chroot (installed and imported always);
                    off by default: under qemu its CPU plugin gave wrong labels (docs/aarch64.md)
  --no-ssh          skip the step where sshd serves the root as a "Pi" and the host runs
                    `edgecls bench --host` and `run --remote` on it (skipped with the reason
                    when sshd is missing or cannot chroot into the root)
  --images N        Imagenette val images per class (default 3, 10 classes)
  --tie-margin M    accept a label difference only as a top-2 near tie within M on both
                    sides (INT8 kernels round differently on x86_64 and aarch64); reported
                    in the near-ties column. Default 0.05; 0 fails on any label difference
  --mirror URL      Debian mirror (default http://deb.debian.org/debian)
  --root-only       build or verify the arm64 root(s), then stop
  --dry-run         check the preconditions and print the plan; change nothing
  -h, --help        show this help

Exit codes: 0 all agreed, 1 a check failed, 2 a precondition is missing or bad usage.
EOF
}

log() { printf '[check-aarch64] %s\n' "$*" >&2; }
die() { printf 'check-aarch64: error: %s\n  hint: %s\n' "$1" "$2" >&2; exit "${3:-2}"; }

parse_args() {
  while (($#)); do
    case "$1" in
      --python) [[ $# -ge 2 ]] || die "--python needs a value" "use --python 3.11, 3.13 or all"
        case "$2" in
          3.11|3.13) PYTHONS+=("$2") ;;
          all) PYTHONS+=(3.11 3.13) ;;
          *) die "unsupported Python '$2'" "use --python 3.11 (Debian bookworm), 3.13 (trixie) or all" ;;
        esac; shift 2 ;;
      --keep) KEEP=1; shift ;;
      --model) [[ $# -ge 2 ]] || die "--model needs a path" "give a .tflite, .onnx or .xml file"
        [[ -f "$2" ]] || die "model file '$2' does not exist" "give an existing .tflite, .onnx or .xml file"
        EXTRA_MODELS+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
      --no-build-models) BUILD_MODELS=0; shift ;;
      --run-openvino) RUN_OPENVINO=1; shift ;;
      --no-ssh) SSH_STEP=0; shift ;;
      --images) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--images needs a positive integer" "e.g. --images 3"
        IMAGES_PER_CLASS="$2"; shift 2 ;;
      --tie-margin) [[ "${2:-}" =~ ^0(\.[0-9]+)?$ ]] || die "--tie-margin needs a number in [0, 1)" "e.g. --tie-margin 0.05, or 0 for none"
        TIE_MARGIN="$2"; shift 2 ;;
      --mirror) [[ -n "${2:-}" ]] || die "--mirror needs a URL" "e.g. --mirror http://deb.debian.org/debian"
        MIRROR="$2"; shift 2 ;;
      --root-only) ROOT_ONLY=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option '$1'" "run scripts/check-aarch64.sh --help" ;;
    esac
  done
  ((${#PYTHONS[@]})) || PYTHONS=(3.11)
  mapfile -t PYTHONS < <(printf '%s\n' "${PYTHONS[@]}" | awk '!seen[$0]++')
}

suite_for() { case "$1" in 3.11) echo bookworm ;; 3.13) echo trixie ;; esac; }

# ---------------------------------------------------------------- preconditions
require_root() {
  [[ "$CHECK_UID" == 0 ]] || die "not running as root (uid $CHECK_UID): debootstrap, chroot and mount need root" \
    "rerun as root, e.g. sudo scripts/check-aarch64.sh"
}

require_binfmt_kernel() {
  grep -qw binfmt_misc "$PROC_FILESYSTEMS" 2>/dev/null || die \
    "no binfmt support: the kernel offers no binfmt_misc filesystem (checked $PROC_FILESYSTEMS)" \
    "use a kernel/host with binfmt_misc (a container may need --privileged), or run on a real aarch64 board"
}

probe_url() {  # probe_url URL -> 0 when an HTTP answer arrives within 20 s
  "$HOST_PY" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=20)
EOF
}

require_network() {
  probe_url "$PYPI_PROBE" || die "no network to the Python package registry ($PYPI_PROBE)" \
    "the aarch64 wheels are downloaded from PyPI: check the network or proxy settings"
  local suite
  for suite in $(printf '%s\n' "${PYTHONS[@]}" | while read -r v; do suite_for "$v"; done | sort -u); do
    [[ -f "$CACHE/roots/$suite-arm64/$ROOT_MARKER" ]] && continue
    probe_url "$MIRROR/dists/$suite/Release" || die \
      "no network to the Debian mirror ($MIRROR/dists/$suite/Release)" \
      "the arm64 root is built with debootstrap from a Debian mirror: check the network or pass --mirror URL"
  done
}

require_host_python() {
  [[ -x "$HOST_PY" ]] || die "host Python '$HOST_PY' not found" \
    "create the dev venv first: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'"
}

install_tools() {
  local missing=() pkg
  for pkg in "${APT_TOOLS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || { log "host tools present: ${APT_TOOLS[*]}"; return; }
  log "installing host tools: ${missing[*]}"
  apt-get update -qq >&2 || die "apt-get update failed" "check the network to the Debian mirror"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
    || die "could not install ${missing[*]}" "install them by hand: apt-get install ${missing[*]}"
}

enable_binfmt() {
  if ! mountpoint -q "$BINFMT_DIR"; then
    log "mounting binfmt_misc on $BINFMT_DIR"
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" 2>/dev/null || die \
      "no binfmt support: could not mount binfmt_misc on $BINFMT_DIR" \
      "a container needs --privileged (or the host must register qemu-aarch64)"
  fi
  [[ -e "$BINFMT_DIR/qemu-aarch64" ]] || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  grep -q '^enabled' "$BINFMT_DIR/qemu-aarch64" 2>/dev/null || die \
    "no binfmt support: qemu-aarch64 is not registered/enabled in $BINFMT_DIR" \
    "check 'update-binfmts --display qemu-aarch64' (package qemu-user-static)"
  log "binfmt: qemu-aarch64 enabled"
}

# ---------------------------------------------------------------- mounts and cleanup
mounts_under() {  # mount points at or below $1, deepest first
  local path
  path="$(realpath -m "$1")"
  awk -v p="$path" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

umount_under() {
  local m
  for m in $(mounts_under "$1"); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

safe_remove() {  # removes a folder only when nothing is mounted below it
  [[ -e "$1" ]] || return 0
  umount_under "$1"
  [[ -z "$(mounts_under "$1")" ]] || { log "NOT removing $1: mounts remain below it"; return 1; }
  rm -rf --one-file-system "$1"
}

mount_chroot() {  # /proc and /dev only: with /sys mounted LiteRT sees the host CPU and segfaults
  local root="$1"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
  MOUNTED_ROOTS+=("$root")
}

cleanup() {
  local rc=$? root
  trap - EXIT INT TERM
  for root in "${MOUNTED_ROOTS[@]}"; do
    umount_under "$root/proc"; umount_under "$root/dev"; umount_under "$root/sys"
    ((KEEP)) || safe_remove "$root$CHECK_DIR" || true
  done
  [[ -z "$BUILDING_ROOT" ]] || { log "removing half-built root $BUILDING_ROOT"; safe_remove "$BUILDING_ROOT" || true; }
  if [[ -n "$WORK" ]]; then
    if ((KEEP)); then log "kept work folder $WORK"; else safe_remove "$WORK" || true; fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------------- the arm64 root
build_root() {  # build_root SUITE -> sets ROOT (not in a subshell: the EXIT trap must see BUILDING_ROOT)
  local suite="$1" final="$CACHE/roots/$1-arm64" stale tmp
  if [[ -f "$final/$ROOT_MARKER" ]]; then
    log "reusing arm64 $suite root $final ($(tr '\n' ' ' <"$final/$ROOT_MARKER"))"
    ROOT="$final"; return
  fi
  mkdir -p "$CACHE/roots"
  for stale in "$CACHE/roots/.build-$suite-arm64."* "$final"; do
    [[ -e "$stale" ]] || continue
    log "removing incomplete root $stale"; safe_remove "$stale" || die "cannot remove $stale" "unmount what is below it"
  done
  tmp="$(mktemp -d "$CACHE/roots/.build-$suite-arm64.XXXXXX")"
  BUILDING_ROOT="$tmp"
  log "debootstrap (first stage) arm64 $suite -> $tmp"
  nice -n 5 debootstrap --arch=arm64 --foreign --variant=minbase \
    --include=python3,python3-venv,python3-pip "$suite" "$tmp" "$MIRROR" >&2 \
    || die "debootstrap first stage failed for $suite" "see the output above; check the mirror $MIRROR" 1
  log "debootstrap second stage (emulated, about 8 minutes)"
  nice -n 5 chroot "$tmp" /debootstrap/debootstrap --second-stage >&2 \
    || die "debootstrap second stage failed for $suite" "see $tmp/debootstrap/debootstrap.log" 1
  umount_under "$tmp"
  local machine python
  machine="$(chroot "$tmp" /bin/uname -m)"
  python="$(chroot "$tmp" /usr/bin/python3 -c 'import platform; print(platform.python_version())')"
  [[ "$machine" == aarch64 ]] || die "the $suite root reports machine '$machine', not aarch64" "check binfmt" 1
  printf 'suite=%s\nmachine=%s\npython=%s\nglibc=%s\nbuilt=%s\n' "$suite" "$machine" "$python" \
    "$(chroot "$tmp" /usr/bin/getconf GNU_LIBC_VERSION | awk '{print $2}')" "$(date -u +%FT%TZ)" \
    >"$tmp/$ROOT_MARKER"
  mv "$tmp" "$final"
  BUILDING_ROOT=""
  log "arm64 $suite root ready: machine $machine, Python $python"
  ROOT="$final"
}

root_value() { sed -n "s/^$2=//p" "$1/$ROOT_MARKER"; }

# ---------------------------------------------------------------- wheels
platform_args() {  # the brief's manylinux tags plus every manylinux_2_N up to the root's glibc
  local glibc_minor="$1" n args=()
  for tag in "${BASE_PLATFORMS[@]}"; do args+=(--platform "$tag"); done
  for ((n = 29; n <= glibc_minor; n++)); do args+=(--platform "manylinux_2_${n}_aarch64"); done
  printf '%s\n' "${args[@]}"
}

build_edgecls_wheel() {  # sets EDGECLS_WHEEL; builds from a copy so no stale build/ leaks in
  log "building the edgecls wheel on the host"
  mkdir -p "$WORK/src" "$WORK/dist"
  # every file git does not ignore (package, targets/, calibration/ data files, README...)
  git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$WORK/src"
  "$HOST_PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" >&2 \
    || die "pip wheel of edgecls failed" "run '$HOST_PY -m pip wheel --no-deps .' to see why" 1
  EDGECLS_WHEEL="$(ls "$WORK/dist"/edgecls-*.whl)"
}

download_extra() {  # download_extra PYVER GLIBC_MINOR EXTRA DEST WHEEL -> 0 when all wheels exist
  local pyver="$1" glibc_minor="$2" extra="$3" dest="$4" wheel="$5" plat
  mapfile -t plat < <(platform_args "$glibc_minor")
  "$HOST_PY" -m pip download -q --only-binary=:all: "${plat[@]}" --python-version "$pyver" \
    --implementation cp -d "$dest" "edgecls[$extra] @ file://$wheel" >"$dest.$extra.log" 2>&1
}

# ---------------------------------------------------------------- images and models (host side)
prepare_images() {  # the first N val images of each Imagenette class, copied flat into $WORK/images
  local val="$SHARED/data/imagenette/val" class file count
  [[ -d "$val" ]] || die "Imagenette val images not found under $val" \
    "the check needs the shared data folder beside the checkout (or EDGECLS_AARCH64_SHARED=DIR)"
  mkdir -p "$WORK/images"
  for class in $(ls "$val" | sort); do
    count=0
    for file in $(ls "$val/$class" | sort); do
      cp "$val/$class/$file" "$WORK/images/${class}_$file"
      count=$((count + 1)); ((count < IMAGES_PER_CLASS)) || break
    done
  done
  log "$(ls "$WORK/images" | wc -l) Imagenette val images in $WORK/images"
}

prepare_models() {  # fills $WORK/models with the models to check; labels files beside them
  mkdir -p "$WORK/models"
  local coral="$SHARED/models/coral"
  [[ -f "$coral/mobilenet_v2_1.0_224_quant.tflite" ]] || die "Coral reference model not found in $coral" \
    "the check needs the shared data folder beside the checkout (or EDGECLS_AARCH64_SHARED=DIR)"
  cp "$coral/mobilenet_v2_1.0_224_quant.tflite" "$WORK/models/coral_mobilenet_v2_quant.tflite"
  cp "$coral/imagenet_labels.txt" "$WORK/models/coral_mobilenet_v2_quant.labels.txt"
  ((BUILD_MODELS)) && build_exported_models
  local model
  for model in "${EXTRA_MODELS[@]}"; do
    cp "$model" "$WORK/models/"
    [[ "$model" != *.xml ]] || cp "${model%.xml}.bin" "$WORK/models/"
    [[ ! -f "${model%.*}.labels.txt" ]] || cp "${model%.*}.labels.txt" "$WORK/models/"
  done
}

build_exported_models() {  # a tiny model trained + exported to INT8 TFLite and ONNX by edgecls
  log "training a small model and exporting INT8 TFLite, ONNX, OpenVINO on the host (edgecls export)"
  nice -n 5 bash "$HELPERS/export-models.sh" "$REPO" "$SHARED" "$WORK/build" "$WORK/models" >&2 \
    || die "training/exporting the small models failed" "see the output above, or pass --no-build-models --model PATH" 1
}

# ---------------------------------------------------------------- inside the chroot
in_chroot() {  # runs a command in the root with a clean environment, niced
  nice -n 5 chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=$CHECK_DIR/venv/bin:/usr/local/bin:/usr/bin:/bin "$@"
}

download_wheels() {  # download_wheels PYVER -> sets EXTRAS (the extras whose aarch64 wheels exist)
  local pyver="$1" glibc_minor extra
  glibc_minor="$(root_value "$ROOT" glibc | cut -d. -f2)"
  WHEELS="$WORK/wheels-cp${pyver/./}"
  mkdir -p "$WHEELS"
  EXTRAS=()
  for extra in runtime-tflite runtime-onnx runtime-openvino; do
    if download_extra "$pyver" "$glibc_minor" "$extra" "$WHEELS" "$EDGECLS_WHEEL"; then
      EXTRAS+=("$extra")
      log "Python $pyver: aarch64 wheels for edgecls[$extra] downloaded"
    else
      log "Python $pyver: no complete set of aarch64 wheels for edgecls[$extra]: $(grep -m1 ERROR "$WHEELS.$extra.log" || tail -1 "$WHEELS.$extra.log")"
      add_row "(install)" "${extra#runtime-}" "$pyver" - - - "no aarch64 wheel"
    fi
  done
  cp "$EDGECLS_WHEEL" "$WHEELS/"
}

install_in_chroot() {  # install_in_chroot PYVER -> 0 when edgecls imports without TensorFlow
  local pyver="$1" joined
  safe_remove "$ROOT$CHECK_DIR"
  mkdir -p "$ROOT$CHECK_DIR/out"
  cp -r "$WHEELS" "$ROOT$CHECK_DIR/wheels"
  cp -r "$WORK/images" "$WORK/models" "$ROOT$CHECK_DIR/"
  cp -r "$HELPERS" "$ROOT$HELPERS_IN_CHROOT"
  mount_chroot "$ROOT"
  joined="$(IFS=,; echo "${EXTRAS[*]}")"
  log "Python $pyver: venv + pip install --no-index edgecls[$joined] inside the chroot (emulated)"
  in_chroot /usr/bin/python3 -m venv "$CHECK_DIR/venv" >&2 || return 1
  in_chroot pip install -q --no-index --find-links "$CHECK_DIR/wheels" \
    "$CHECK_DIR/wheels/$(basename "$EDGECLS_WHEEL")[$joined]" >&2 || return 1
  in_chroot python "$HELPERS_IN_CHROOT/probe.py" >&2 || return 1
}

run_model() {  # run_model SIDE MODEL_FILE OUT_JSONL: edgecls run on the host or in the chroot
  local side="$1" model="$2" out="$3" base labels=() dir
  base="$(basename "$model")"
  if [[ "$side" == host ]]; then dir="$WORK"; else dir="$CHECK_DIR"; fi
  [[ ! -f "$WORK/models/${base%.*}.labels.txt" ]] || labels=(--labels "$dir/models/${base%.*}.labels.txt")
  local args=(run "$dir/models/$base" --source "$dir/images" --headless --jsonl "$out" "${labels[@]}")
  if [[ "$side" == host ]]; then
    env -u PYTHONPATH nice -n 5 "$REPO/.venv/bin/edgecls" "${args[@]}" >"$out.log" 2>&1
    return
  fi
  # OpenVINO's CPU plugin reads the CPU topology from /sys (it segfaults without it under
  # emulation), while LiteRT segfaults WITH the host's /sys: mount it for OpenVINO only.
  [[ "$base" != *.xml ]] || mountpoint -q "$ROOT/sys" || mount -t sysfs sysfs "$ROOT/sys"
  local rc=0
  in_chroot edgecls "${args[@]}" >"$WORK/$(basename "$out").chroot.log" 2>&1 || rc=$?
  umount_under "$ROOT/sys"
  return "$rc"
}

backend_of() { case "$1" in *.tflite) echo litert ;; *.onnx) echo onnxruntime ;; *.xml) echo openvino ;; esac; }
extra_of() { case "$1" in *.tflite) echo runtime-tflite ;; *.onnx) echo runtime-onnx ;; *.xml) echo runtime-openvino ;; esac; }

check_model() {  # check_model PYVER MODEL_FILE
  local pyver="$1" model="$2" base backend host_out arm_out row
  base="$(basename "$model")"; backend="$(backend_of "$base")"
  if [[ " ${EXTRAS[*]} " != *" $(extra_of "$base") "* ]]; then
    add_row "$base" "$backend" "$pyver" - - - "skipped: no aarch64 wheel"; return
  fi
  if [[ "$base" == *.xml ]] && ! ((RUN_OPENVINO)); then
    add_row "$base" "$backend" "$pyver" - - - "not run: unreliable under qemu (--run-openvino)"; return
  fi
  host_out="$WORK/host-$base.jsonl"  # the full name: model.tflite and model.onnx differ
  if [[ ! -f "$host_out" ]]; then
    log "host: edgecls run $base"
    if ! run_model host "$model" "$host_out"; then
      tail -5 "$host_out.log" >&2; rm -f "$host_out"
      add_row "$base" "$backend" "host" - - - "FAIL: host run"; FAILED=1; return
    fi
  fi
  arm_out="$CHECK_DIR/out/$base.jsonl"
  log "aarch64 Python $pyver: edgecls run $base (emulated)"
  if ! run_model chroot "$model" "$arm_out"; then
    log "aarch64 run failed:"; grep -v cpuinfo "$WORK/$(basename "$arm_out").chroot.log" | tail -20 >&2
    add_row "$base" "$backend" "$pyver" - - - "FAIL: aarch64 run"; FAILED=1; return
  fi
  if row="$("$HOST_PY" "$HELPERS/compare_jsonl.py" "$host_out" "$ROOT$arm_out" --tie-margin "$TIE_MARGIN")"; then
    add_row "$base" "$backend" "$pyver" $row "ok"
  else
    add_row "$base" "$backend" "$pyver" ${row:-- - -} "FAIL: labels differ"; FAILED=1
  fi
}

check_prepare() {  # check_prepare PYVER: prepare() bit-identical on host and aarch64
  local pyver="$1" row
  [[ -f "$WORK/host-prepare.jsonl" ]] || \
    "$HOST_PY" "$HELPERS/prep_digest.py" "$WORK/images" "$WORK/host-prepare.jsonl" >&2
  log "aarch64 Python $pyver: prepare() digests (emulated)"
  if ! in_chroot python "$HELPERS_IN_CHROOT/prep_digest.py" "$CHECK_DIR/images" "$CHECK_DIR/out/prepare.jsonl" >&2; then
    add_row "prepare()" "-" "$pyver" - - - "FAIL: aarch64 run"; FAILED=1; return
  fi
  if row="$("$HOST_PY" "$HELPERS/prep_digest.py" --compare "$WORK/host-prepare.jsonl" "$ROOT$CHECK_DIR/out/prepare.jsonl")"; then
    add_row "prepare()" "-" "$pyver" $row - "ok: bit-identical"
  else
    add_row "prepare()" "-" "$pyver" ${row:-- -} - "FAIL: preprocessing differs"; FAILED=1
  fi
}

check_ssh() {  # check_ssh PYVER: the root served by sshd as a device, driven over ssh from the host
  local pyver="$1" coral="$WORK/models/coral_mobilenet_v2_quant.tflite" models=() model rows rc=0
  ((SSH_STEP)) || { add_row "(ssh device)" - "$pyver" - - - "skipped: --no-ssh"; return; }
  for model in "$WORK/models/"*.tflite "$WORK/models/"*.onnx; do
    [[ -f "$model" && " ${EXTRAS[*]} " == *" $(extra_of "$model") "* ]] && models+=("$model")
  done
  log "aarch64 Python $pyver: sshd serving the root; bench --host and run --remote from the host"
  rows="$(TIE_MARGIN="$TIE_MARGIN" bash "$HELPERS/ssh-check.sh" "$ROOT" "$CHECK_DIR/venv/bin/python" \
    "$CHECK_DIR/images" "$WORK" "$HOST_PY" aarch64 "$coral" "$WORK/host-$(basename "$coral").jsonl" \
    --labels "${coral%.tflite}.labels.txt" -- "${models[@]}")" || rc=$?
  while IFS='|' read -r what backend frames agreement ties status; do
    [[ -z "$what" ]] || add_row "$what" "$backend" "$pyver" "$frames" "$agreement" "$ties" "$status"
  done <<<"$rows"
  ((rc != 1)) || FAILED=1
}

check_python() {  # check_python PYVER ROOT: install + classify + compare for one Python
  local pyver="$1" model
  if [[ -z "$WORK" ]]; then
    WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
    build_edgecls_wheel
    prepare_images
    prepare_models
  fi
  download_wheels "$pyver"
  ((${#EXTRAS[@]})) || { FAILED=1; return; }
  if ! install_in_chroot "$pyver"; then
    add_row "(install)" "-" "$pyver" - - - "FAIL: install/import in chroot"; FAILED=1; return
  fi
  add_row "(install)" "$(IFS=,; echo "${EXTRAS[*]//runtime-/}")" "$pyver" - - - "ok: no TensorFlow"
  check_prepare "$pyver"
  for model in "$WORK/models/"*.tflite "$WORK/models/"*.onnx "$WORK/models/"*.xml; do
    [[ -f "$model" ]] && check_model "$pyver" "$model"
  done
  check_ssh "$pyver"
  umount_under "$ROOT/proc"; umount_under "$ROOT/dev"
}

# ---------------------------------------------------------------- summary
add_row() { RESULTS+="$1|$2|$3|$4|$5|$6|$7"$'\n'; }

print_summary() {
  log "summary (host: $(uname -m) Python $("$HOST_PY" -c 'import platform; print(platform.python_version())'); near-tie margin $TIE_MARGIN)"
  {
    echo "model|backend|python|frames|agreement|near-ties|status"
    printf '%s' "$RESULTS"
  } | column -t -s '|' | sed 's/^/  /' >&2
  if ((FAILED)); then log "RESULT: FAILED (see the rows above)"; else log "RESULT: all aarch64 checks agree with the host"; fi
}

lock_suites() {  # one lock per Debian suite: two runs never build or use the same root at once
  local pyver suite fd
  for pyver in "${PYTHONS[@]}"; do
    suite="$(suite_for "$pyver")"
    exec {fd}>"$CACHE/.lock-$suite"
    flock -n "$fd" || die "another check-aarch64.sh is using the $suite root (lock $CACHE/.lock-$suite)" \
      "wait for it to finish"
  done
}

# ---------------------------------------------------------------- main
main() {
  parse_args "$@"
  require_root
  require_binfmt_kernel
  require_host_python
  require_network
  if ((DRY_RUN)); then
    log "dry run: root, binfmt_misc and network are available; would check Python ${PYTHONS[*]}"
    log "dry run: roots under $CACHE/roots, mirror $MIRROR; nothing was changed"
    return 0
  fi
  mkdir -p "$CACHE"
  lock_suites
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  install_tools
  enable_binfmt
  local pyver
  for pyver in "${PYTHONS[@]}"; do
    build_root "$(suite_for "$pyver")"
    ((ROOT_ONLY)) && continue
    check_python "$pyver" "$ROOT"
  done
  ((ROOT_ONLY)) || print_summary
  return "$FAILED"
}

# One line: bash has read it whole before main runs, so editing this file during a run is safe.
main "$@"; exit "$?"
