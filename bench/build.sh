#!/usr/bin/env bash
# Builds: berth against `podman build` on the same environment — a Debian
# base already present in both stores, 200 files of 20 KiB copied, one run
# step — in the same run: cold build, no-op rebuild, and rebuild after
# editing one copied file. Run from the repo root as root:
#
#     bash bench/build.sh             # RUNS=10 WARMUP=1 by default
#
# Needs hyperfine, podman, runc and mmdebstrap (installed with apt when missing);
# the Debian root is made once with mmdebstrap and kept in target/bench/.
set -euo pipefail

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
need hyperfine hyperfine; need podman podman; need runc runc; need python3 python3

cargo build --release -q
BERTH_BIN="$PWD/target/release/berth"
DEBIAN=$(debian_root)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-build-bench.XXXXXX")
PODMAN=$(podman_in "$WORK")
cleanup() { $PODMAN system reset -f >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

# The project: the same files for both tools.
P=$WORK/project
mkdir -p "$P/files"
for i in $(seq -w 200); do head -c 20480 /dev/urandom > "$P/files/f$i"; done
cp "$DEBIAN" "$P/debian.tar"
cat > "$P/berth.toml" <<'TOML'
project = "bench"

[env.base]
image = "rootfs:debian.tar"

[env.app]
from = "base"
copy = [{ src = "files", dest = "/files" }]
run = ["ls -lR /files > /files.list"]
TOML
printf 'FROM localhost/bench-debian\nCOPY files /files\nRUN ls -lR /files > /files.list\n' > "$P/Containerfile"
printf 'debian.tar\nberth.toml\n' > "$P/.containerignore"
printf 'debian.tar\nContainerfile\n.containerignore\n' > "$P/.berthignore"

# The Debian base, present in both stores before anything is timed.
$BERTH_BIN --root "$WORK/berth-base" build -q -f "$P/berth.toml" base >/dev/null
$PODMAN import -q "$DEBIAN" localhost/bench-debian >/dev/null
cp -al "$WORK/berth-base" "$WORK/berth-warm"
$BERTH_BIN --root "$WORK/berth-warm" build -q -f "$P/berth.toml" >/dev/null
$PODMAN build -q -t bench-app "$P" >/dev/null

read -r BC PC < <(pair cold \
    "$BERTH_BIN --root $WORK/berth-cold build -q -f $P/berth.toml" \
    "$PODMAN build -q --no-cache -t bench-app $P" \
    "bash -c 'rm -rf $WORK/berth-cold; cp -al $WORK/berth-base $WORK/berth-cold'")
read -r BN PN < <(pair noop \
    "$BERTH_BIN --root $WORK/berth-warm build -q -f $P/berth.toml" \
    "$PODMAN build -q -t bench-app $P" \
    "true")
read -r BE PE < <(pair edit \
    "$BERTH_BIN --root $WORK/berth-warm build -q -f $P/berth.toml" \
    "$PODMAN build -q -t bench-app $P" \
    "bash -c 'head -c 20480 /dev/urandom > $P/files/f100'")

python3 - "$BC" "$PC" "$BN" "$PN" "$BE" "$PE" <<'PY'
import sys
bc, pc, bn, pn, be, pe = map(float, sys.argv[1:])
print(f"{'':22}{'berth s':>9}{'podman s':>10}{'berth/podman':>14}")
print(f"{'cold build':22}{bc:9.3f}{pc:10.3f}{bc/pc:14.2f}")
print(f"{'no-op rebuild':22}{bn:9.3f}{pn:10.3f}{bn/pn:14.2f}   (goal: berth < 0.050 s)")
print(f"{'one file edited':22}{be:9.3f}{pe:10.3f}{be/pe:14.2f}   (goal: <= 0.5)")
PY
