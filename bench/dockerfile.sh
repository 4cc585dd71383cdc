#!/usr/bin/env bash
# Dockerfile builds: `berth build -t` against `podman build` on the same
# 6-instruction Dockerfile (FROM the busybox test image, COPY of a small
# tree, RUN, ENV, WORKDIR, CMD), in the same run: cold build, no-op
# rebuild, and rebuild after one copied file changes. Run from the repo
# root as root:
#
#     bash bench/dockerfile.sh        # RUNS=5 WARMUP=1 by default
#
# Needs hyperfine, podman and runc (installed with apt when missing); the
# busybox image is made by fixtures/images/busybox.sh. Goals (issue 15):
# no-op <= 0.1x podman, one file changed <= 0.5x, cold <= 1.0x.
set -euo pipefail

RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
FILES=${FILES:-100}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
need hyperfine hyperfine; need podman podman; need runc runc; need python3 python3

cargo build --release -q
BERTH_BIN="$PWD/target/release/berth"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-dockerfile-bench.XXXXXX")
PODMAN=$(podman_in "$WORK")
cleanup() { $PODMAN system reset -f >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

# The context: the same files for both tools, FILES files of 4 KiB in 10
# directories.
P=$WORK/context
for d in $(seq 10); do mkdir -p "$P/app/d$d"; done
for i in $(seq "$FILES"); do head -c 4096 /dev/urandom > "$P/app/d$((i % 10 + 1))/f$i"; done
cat > "$P/Dockerfile" <<'DOCKERFILE'
FROM busybox:latest
COPY app /srv/app
RUN find /srv/app -type f | wc -l > /srv/count
ENV APP_MODE=bench
WORKDIR /srv/app
CMD ["cat", "/srv/count"]
DOCKERFILE

# The base, present in both stores before anything is timed.
bash fixtures/images/busybox.sh "$WORK/busybox.tar" >/dev/null
$BERTH_BIN --root "$WORK/berth-base" import "$WORK/busybox.tar" busybox:latest >/dev/null
$PODMAN import -q "$WORK/busybox.tar" busybox:latest >/dev/null
cp -al "$WORK/berth-base" "$WORK/berth-warm"
BUILD_BERTH="build -q -t bench/app:1 $P"
BUILD_PODMAN="build -q --pull=never -t bench/app:1 $P"
$BERTH_BIN --root "$WORK/berth-warm" $BUILD_BERTH >/dev/null
$PODMAN $BUILD_PODMAN >/dev/null

read -r BC PC < <(pair cold \
    "$BERTH_BIN --root $WORK/berth-cold $BUILD_BERTH" \
    "$PODMAN build -q --pull=never --no-cache -t bench/app:1 $P" \
    "bash -c 'rm -rf $WORK/berth-cold; cp -al $WORK/berth-base $WORK/berth-cold'")
read -r BN PN < <(pair noop \
    "$BERTH_BIN --root $WORK/berth-warm $BUILD_BERTH" \
    "$PODMAN $BUILD_PODMAN" \
    "true")
read -r BE PE < <(pair edit \
    "$BERTH_BIN --root $WORK/berth-warm $BUILD_BERTH" \
    "$PODMAN $BUILD_PODMAN" \
    "bash -c 'head -c 4096 /dev/urandom > $P/app/d1/f10'")

python3 - "$RUNS" "$FILES" "$BC" "$PC" "$BN" "$PN" "$BE" "$PE" <<'PY'
import sys
runs, files = sys.argv[1:3]
bc, pc, bn, pn, be, pe = map(float, sys.argv[3:])
print(f"medians of {runs} runs, {files} files copied")
print(f"{'':22}{'berth s':>9}{'podman s':>10}{'berth/podman':>14}")
print(f"{'cold build':22}{bc:9.3f}{pc:10.3f}{bc/pc:14.2f}   (goal: <= 1.0)")
print(f"{'no-op rebuild':22}{bn:9.3f}{pn:10.3f}{bn/pn:14.2f}   (goal: <= 0.1)")
print(f"{'one file changed':22}{be:9.3f}{pe:10.3f}{be/pe:14.2f}   (goal: <= 0.5)")
PY
