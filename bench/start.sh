#!/usr/bin/env bash
# Container start and exec: berth against runc and podman on the same
# busybox image, in the same run; and what berth's seccomp filter costs.
# Run from the repo root as root:
#
#     bash bench/start.sh             # RUNS=30 WARMUP=3 PAIRS=200 by default
#
# start: `berth run --rm IMG true`  vs  `runc run` on a bundle unpacked from
#        the same image  vs  `podman run --rm --runtime runc --network none`
# seccomp: `berth run --rm IMG true` with the default profile and with
#        `--security-opt seccomp=unconfined`, PAIRS times each, the two
#        alternating (so a machine busy with other work slows both alike):
#        both medians, their difference and the median of the pairs'
#        differences (goal <= 1 ms), in wall time and in CPU time (user +
#        system of berth and the container's processes, which it reaps:
#        less disturbed by other work on the machine than wall time); then examples/seccomp_compile, the
#        filter's own cost without a process around it (profile, resolve
#        for a container's capabilities, compile to BPF)
# exec:  `berth exec NAME true`     vs  `podman exec NAME true`
#
# Needs hyperfine, runc and podman (installed with apt when missing). Every
# store (berth's, podman's, runc's state) lives in a temp dir removed at exit.
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PAIRS=${PAIRS:-200}

cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
[[ -f Cargo.toml ]] || { echo "start.sh: run it from the berth repo" >&2; exit 2; }

need hyperfine hyperfine && need runc runc && need podman podman && need python3 python3

cargo build --release -q
cargo build --release -q --example seccomp_compile
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
    -n runc "runc --root $WORK/runc run -b $WORK/bundle bench-start" \
    -n podman "$PODMAN run --rm --network none $LIMITS localhost/bench-busybox true" >/dev/null
read -r B R P < <(median "$WORK/start.json" ms)

echo "== seccomp: berth run --rm with the default profile vs unconfined ($PAIRS alternating pairs, $WARMUP warmup)"
python3 - "$BERTH" "$PAIRS" "$WARMUP" >"$WORK/seccomp.txt" <<'PY'
import os, statistics, sys, time
berth, pairs, warmup = sys.argv[1].split(), int(sys.argv[2]), int(sys.argv[3])
run = {
    "default": berth + ["run", "--rm", "bench-busybox", "true"],
    "unconfined": berth + ["run", "--rm", "--security-opt", "seccomp=unconfined", "bench-busybox", "true"],
}
to_null = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
def once(name):
    """Wall and CPU (user + system, of berth and the container's processes
    it reaps) milliseconds of one start."""
    t = time.perf_counter_ns()
    pid = os.posix_spawn(run[name][0], run[name], os.environ, file_actions=to_null)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - t) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"start.sh: {' '.join(run[name])} failed")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000
for _ in range(warmup):
    once("default"), once("unconfined")
ms = {"default": [], "unconfined": []}
for i in range(pairs):
    for name in (("default", "unconfined") if i % 2 == 0 else ("unconfined", "default")):
        ms[name].append(once(name))
for k in (0, 1):  # wall, then CPU
    a, b = [x[k] for x in ms["default"]], [x[k] for x in ms["unconfined"]]
    d = [x - y for x, y in zip(a, b)]
    q = statistics.quantiles(d, n=4)
    print(statistics.median(a), statistics.median(b), statistics.median(d), q[0], q[2], end=" ")
print()
PY
read -r SD SU SDIFF SQ1 SQ3 CD CU CDIFF CQ1 CQ3 <"$WORK/seccomp.txt"
target/release/examples/seccomp_compile 2000 >"$WORK/compile.txt"

$BERTH run -d --name bench-exec bench-busybox sleep 3600 >/dev/null
$PODMAN run -d --name bench-exec --network none $LIMITS localhost/bench-busybox sleep 3600 >/dev/null
echo "== exec: berth exec vs podman exec ($RUNS runs, $WARMUP warmup)"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/exec.json" \
    -n berth "$BERTH exec bench-exec true" \
    -n podman "$PODMAN exec bench-exec true" >/dev/null
read -r BE PE < <(median "$WORK/exec.json" ms)

python3 - "$B" "$R" "$P" "$BE" "$PE" "$SD" "$SU" "$SDIFF" "$SQ1" "$SQ3" "$CD" "$CU" "$CDIFF" "$CQ1" "$CQ3" "$PAIRS" <<'PY'
import sys
b, r, p, be, pe, sd, su, sdiff, sq1, sq3, cd, cu, cdiff, cq1, cq3 = map(float, sys.argv[1:16])
pairs = int(sys.argv[16])
print(f"{'':30}{'median ms':>10}")
print(f"{'berth run --rm':30}{b:>10.1f}")
print(f"{'runc run':30}{r:>10.1f}   berth/runc   = {b/r:.2f}  (goal <= 1)")
print(f"{'podman run --rm':30}{p:>10.1f}   berth/podman = {b/p:.2f}  (goal <= 0.25)")
print(f"{'berth exec':30}{be:>10.1f}")
print(f"{'podman exec':30}{pe:>10.1f}   berth/podman = {be/pe:.2f}  (goal <= 0.25)")
print(f"seccomp, {pairs} alternating pairs of berth run --rm:  {'wall ms':>10}{'CPU ms':>10}")
print(f"{'  default profile':50}{sd:>10.2f}{cd:>10.2f}")
print(f"{'  seccomp=unconfined':50}{su:>10.2f}{cu:>10.2f}")
print(f"{'  difference of the medians':50}{sd-su:>+10.2f}{cd-cu:>+10.2f}")
print(f"{'  median of per-pair differences (goal <= 1)':50}{sdiff:>+10.2f}{cdiff:>+10.2f}")
print(f"{'    their quartiles':50}{f'{sq1:+.1f}..{sq3:+.1f}':>10}{f'{cq1:+.1f}..{cq3:+.1f}':>10}")
PY
echo "seccomp filter alone (examples/seccomp_compile, microseconds):"
sed 's/^/  /' "$WORK/compile.txt"
