#!/usr/bin/env bash
# Image archives: `berth save` and `berth load` against `podman save` and
# `podman load` on the same image — a Debian root imported into both stores —
# in the same run. Run from the repo root as root:
#
#     bash bench/save.sh              # RUNS=10 WARMUP=1 by default
#
# save oci:    berth save -o F IMG                 vs  podman save --format oci-archive -o F IMG
# save docker: berth save --format docker-archive  vs  podman save --format docker-archive
# load:        berth load -i F (fresh store)       vs  podman load -i F (image removed first),
#              each loading the OCI archive it saved
#
# Needs hyperfine, podman, runc and mmdebstrap (installed with apt when missing);
# the Debian root is made once with mmdebstrap and kept in target/bench/
# (as bench/build.sh does). Every store lives in a temp dir removed at exit.
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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-save-bench.XXXXXX")
PODMAN=$(podman_in "$WORK")
cleanup() { $PODMAN system reset -f >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

IMG=localhost/bench/debian:1
$BERTH_BIN --root "$WORK/berth" import "$DEBIAN" "$IMG" >/dev/null
$PODMAN import -q "$DEBIAN" "$IMG" >/dev/null

run() { # run NAME BERTH_CMD PODMAN_CMD BERTH_PREPARE PODMAN_PREPARE
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$1.json" \
        -n berth --prepare "$4" "$2" -n podman --prepare "$5" "$3" >/dev/null 2>&1
    median "$WORK/$1.json"
}

read -r BO PO < <(run oci \
    "$BERTH_BIN --root $WORK/berth save -o $WORK/berth.tar $IMG" \
    "$PODMAN save -q --format oci-archive -o $WORK/podman.tar $IMG" \
    "rm -f $WORK/berth.tar" "rm -f $WORK/podman.tar")
read -r BD PD < <(run docker \
    "$BERTH_BIN --root $WORK/berth save --format docker-archive -o $WORK/berth-d.tar $IMG" \
    "$PODMAN save -q --format docker-archive -o $WORK/podman-d.tar $IMG" \
    "rm -f $WORK/berth-d.tar" "rm -f $WORK/podman-d.tar")
read -r BL PL < <(run load \
    "$BERTH_BIN --root $WORK/berth-load load -q -i $WORK/berth.tar" \
    "$PODMAN load -q -i $WORK/podman.tar" \
    "rm -rf $WORK/berth-load" "$PODMAN rmi -a -f")

size() { python3 -c "import os,sys; print('%.1f' % (os.path.getsize(sys.argv[1]) / 2**20))" "$1"; }
python3 - "$BO" "$PO" "$BD" "$PD" "$BL" "$PL" "$(size "$WORK/berth.tar")" "$(size "$WORK/podman.tar")" <<'PY'
import sys
bo, po, bd, pd, bl, pl, bs, ps = map(float, sys.argv[1:])
print(f"{'':26}{'berth s':>9}{'podman s':>10}{'berth/podman':>14}")
print(f"{'save (oci-archive)':26}{bo:9.3f}{po:10.3f}{bo/po:14.2f}   ({bs:.1f} MiB vs {ps:.1f} MiB)")
print(f"{'save (docker-archive)':26}{bd:9.3f}{pd:10.3f}{bd/pd:14.2f}")
print(f"{'load (oci-archive)':26}{bl:9.3f}{pl:10.3f}{bl/pl:14.2f}")
PY
