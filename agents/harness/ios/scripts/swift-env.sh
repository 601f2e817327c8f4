#!/usr/bin/env bash
# Builds (once, cached) a Debian trixie chroot with Debian's Swift 6 toolchain (`swiftlang`),
# then builds the harness core (agents/harness/ios/HarnessCore), runs its XCTest suite against
# the shared contract fixtures, and type-checks the app's adapter sources against it.
#
#   agents/harness/ios/scripts/swift-env.sh            # build + test (what .ci/run calls)
#   agents/harness/ios/scripts/swift-env.sh --prepare  # only build the toolchain chroot
#
# Needs root (debootstrap, chroot, bind mounts). Without root, or when the chroot is not built
# yet and Debian's archive is unreachable, it prints SKIP and the reason and exits 0: a machine
# that cannot build Swift must not fail CI, but it must say so. A build or test failure exits 1.
# Cache: $BENCHFARM_SWIFT_ROOT (default /var/cache/benchfarm/swift-trixie, ~3.2 GB, outside the
# repository); the repository is bind-mounted read-only into it and SwiftPM's build directory
# lives inside the chroot, so nothing is written into the working tree.
set -euo pipefail

ROOT=${BENCHFARM_SWIFT_ROOT:-/var/cache/benchfarm/swift-trixie}
SUITE=trixie
PACKAGES="swiftlang libc6-dev gcc"
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
SWIFT_LIB=/usr/libexec/swift/lib/swift/linux

skip() { echo "SKIP swift harness: $*"; exit 0; }
log() { echo "swift-env: $*"; }

[ "$(id -u)" = 0 ] || skip "not root (debootstrap, chroot and bind mounts need root)"

# The mirror apt already uses on this machine (only package registries are reachable).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 ~ /debian$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
MIRROR=${BENCHFARM_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}

ready() { [ -x "$ROOT/usr/libexec/swift/bin/swiftc" ] && [ -f "$ROOT/.benchfarm-swift-ready" ]; }

MOUNTS=()
cleanup() {
  local i
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || echo "swift-env: could not unmount ${MOUNTS[i]}"
  done
  MOUNTS=()
}
trap cleanup EXIT
trap 'echo "swift-env: interrupted"; exit 130' INT TERM  # exit runs the EXIT trap: unmount
bind() {  # bind <source> <target> [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

prepare() {
  ready && return 0
  command -v python3 >/dev/null || skip "python3 missing (used to probe the Debian archive)"
  python3 - "$MIRROR/dists/$SUITE/Release" 2>/dev/null <<'PY' || skip "Debian archive $MIRROR unreachable; cannot build the Swift chroot"
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=20).read(1)
PY
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || skip "cannot install debootstrap"
  fi
  if [ ! -f "$ROOT/.debootstrap-done" ]; then  # absent after an interrupted debootstrap: start over
    log "debootstrap $SUITE into $ROOT from $MIRROR (a few minutes, once per machine)"
    rm -rf "$ROOT"
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 \
      || { tail -20 "$ROOT.debootstrap.log"; echo "swift-env: debootstrap failed"; exit 1; }
    touch "$ROOT/.debootstrap-done"
  fi
  bind /proc "$ROOT/proc"
  bind /dev "$ROOT/dev"
  log "apt-get install $PACKAGES inside the chroot"
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null \
    || { chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
         chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null; } \
    || { echo "swift-env: apt-get install $PACKAGES failed in the chroot"; exit 1; }
  chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' $PACKAGES > "$ROOT/.benchfarm-swift-ready"
  cleanup
}

# One machine-wide lock: two CI runs must not debootstrap into the same directory at once.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
prepare
log "toolchain: $(tr '\n' ' ' < "$ROOT/.benchfarm-swift-ready")"
[ "${1:-}" = --prepare ] && exit 0

# The repository, read-only, at a per-run mount point; SwiftPM's scratch directory is per
# repository path inside the chroot, so a second run only rebuilds what changed.
key=$(printf '%s' "$REPO" | sha256sum | cut -c1-12)
SRC=/benchfarm/src-$key  # stable per repository: SwiftPM rebuilds everything when source paths move
SCRATCH=/var/tmp/benchfarm-harness-$key
OUT=/var/tmp/benchfarm-harness-results-$key
rm -rf "${ROOT:?}$OUT"
bind /proc "$ROOT/proc"
bind /dev "$ROOT/dev"
bind "$REPO" "$ROOT$SRC" ro
run() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/libexec/swift/bin:/usr/bin:/bin \
    LD_LIBRARY_PATH="$SWIFT_LIB" HARNESS_FIXTURES="$SRC/agents/harness/contract/fixtures" HARNESS_RESULTS_OUT="$OUT" "$@"
}
PKG=$SRC/agents/harness/ios/HarnessCore
log "swift test (builds HarnessCore and its XCTest suite)"
if ! run swift test --package-path "$PKG" --scratch-path "$SCRATCH" > "$ROOT.test.log" 2>&1; then
  tail -40 "$ROOT.test.log"; echo "swift-env: HarnessCore tests failed"; exit 1
fi
grep -E "Executed [0-9]+ tests?," "$ROOT.test.log" | tail -1 || true

# Every result.json the Swift session tests wrote must satisfy the Python contract too.
log "validating the Swift session's result documents with agents.harness.contract"
PY=$(command -v python || command -v python3)
(cd "$REPO" && PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$ROOT$OUT" <<'PY') || { echo "swift-env: a Swift-written result fails the contract"; exit 1; }
import sys
from pathlib import Path
from agents.harness.contract import parse_result
files = sorted(Path(sys.argv[1]).glob("*.json"))
assert files, f"the Swift tests wrote no result documents into {sys.argv[1]}"
for f in files:
    parse_result(f.read_bytes())
print(f"swift-env: {len(files)} Swift-written result documents valid")
PY

# The app's sources against the built core: on Linux the #if canImport(UIKit / ExecuTorch /
# Accelerate / Darwin) blocks drop out and the rest (error mapping, plist reading, the app's
# wiring) is type-checked; what only Xcode can check is listed in agents/harness/ios/README.md.
MODULES=$(run find -L "$SCRATCH/debug/" -maxdepth 2 -name HarnessCore.swiftmodule | head -1)
[ -n "$MODULES" ] || { echo "swift-env: HarnessCore.swiftmodule not found under $SCRATCH"; exit 1; }
log "swiftc -typecheck BenchfarmHarness/*.swift (Linux: the portable parts)"
run bash -c "swiftc -typecheck -I '$(dirname "$MODULES")' $SRC/agents/harness/ios/BenchfarmHarness/*.swift"
log "ok"
