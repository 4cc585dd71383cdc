#!/usr/bin/env bash
# Container start and exec: berth against runc and podman on the same
# busybox image, in the same run. Run from the repo root as root:
#
#     bash bench/start.sh             # RUNS=30 WARMUP=3 by default
#
# start: `berth run --rm IMG true`  vs  `runc run` on a bundle unpacked from
#        the same image  vs  `podman run --rm --runtime runc --network none`;
#        and berth without its seccomp filter (`--security-opt
#        seccomp=unconfined`), to show what the filter costs (goal <= 1 ms)
# exec:  `berth exec NAME true`     vs  `podman exec NAME true`
#
# Needs hyperfine, runc and podman (installed with apt when missing). Every
# store (berth's, podman's, runc's state) lives in a temp dir removed at exit.
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}

cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
[[ -f Cargo.toml ]] || { echo "start.sh: run it from the berth repo" >&2; exit 2; }

need hyperfine hyperfine && need runc runc && need podman podman && need python3 python3

cargo build --release -q
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-start-bench.XXXXXX")
BERTH="$PWD/target/release/berth --root $WORK/berth"
PODMAN=$(podman_in "$WORK")
LIMITS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
cleanup() {
    $BERTH rm -f bench-exec >/dev/null 2>&1 || true
    $PODMAN rm -f -t 0 bench-exec >/dev/null 2>&1 || true
    $PODMAN system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash fixtures/images/busybox.sh "$WORK/busybox.tar" >/dev/null
$BERTH import "$WORK/busybox.tar" bench-busybox >/dev/null
$PODMAN import -q "$WORK/busybox.tar" localhost/bench-busybox >/dev/null
mkdir -p "$WORK/bundle/rootfs"
tar -xf "$WORK/busybox.tar" -C "$WORK/bundle/rootfs"
(cd "$WORK/bundle" && runc spec)
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY

echo "== start: berth run --rm vs runc run vs podman run --rm ($RUNS runs, $WARMUP warmup)"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/start.json" \
    -n berth "$BERTH run --rm bench-busybox true" \
    -n berth-unconfined "$BERTH run --rm --security-opt seccomp=unconfined bench-busybox true" \
    -n runc "runc --root $WORK/runc run -b $WORK/bundle bench-start" \
    -n podman "$PODMAN run --rm --network none $LIMITS localhost/bench-busybox true" >/dev/null
read -r B BU R P < <(median "$WORK/start.json" ms)

$BERTH run -d --name bench-exec bench-busybox sleep 3600 >/dev/null
$PODMAN run -d --name bench-exec --network none $LIMITS localhost/bench-busybox sleep 3600 >/dev/null
echo "== exec: berth exec vs podman exec ($RUNS runs, $WARMUP warmup)"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/exec.json" \
    -n berth "$BERTH exec bench-exec true" \
    -n podman "$PODMAN exec bench-exec true" >/dev/null
read -r BE PE < <(median "$WORK/exec.json" ms)

python3 - "$B" "$BU" "$R" "$P" "$BE" "$PE" <<'PY'
import sys
b, bu, r, p, be, pe = map(float, sys.argv[1:])
print(f"{'':24}{'median ms':>10}")
print(f"{'berth run --rm':24}{b:>10.1f}")
print(f"{'  without seccomp':24}{bu:>10.1f}   the filter adds {b-bu:+.1f} ms  (goal <= 1)")
print(f"{'runc run':24}{r:>10.1f}   berth/runc   = {b/r:.2f}  (goal <= 1)")
print(f"{'podman run --rm':24}{p:>10.1f}   berth/podman = {b/p:.2f}  (goal <= 0.25)")
print(f"{'berth exec':24}{be:>10.1f}")
print(f"{'podman exec':24}{pe:>10.1f}   berth/podman = {be/pe:.2f}  (goal <= 0.25)")
PY
