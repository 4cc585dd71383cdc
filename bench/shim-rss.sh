#!/usr/bin/env bash
# Memory per supervisor: berth's shim against podman's conmon, with N
# detached containers each (default 50) running `sleep`, in the same run.
# Prints the median RSS and PSS (shared pages split between sharers) per
# process. Run from the repo root as root:
#
#     bash bench/shim-rss.sh          # N=50
set -euo pipefail

N=${N:-50}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
need podman podman; need runc runc; need python3 python3

cargo build --release -q
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-shim-bench.XXXXXX")
BERTH="$PWD/target/release/berth --root $WORK/berth"
PODMAN=$(podman_in "$WORK")
cleanup() {
    $BERTH ps -aq 2>/dev/null | xargs -r $BERTH rm -f >/dev/null 2>&1 || true
    $PODMAN rm -a -f -t 0 >/dev/null 2>&1 || true
    $PODMAN system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash fixtures/images/busybox.sh "$WORK/busybox.tar" >/dev/null
$BERTH import "$WORK/busybox.tar" rss-busybox >/dev/null
$PODMAN import -q "$WORK/busybox.tar" localhost/rss-busybox >/dev/null

for i in $(seq "$N"); do
    $BERTH run -d rss-busybox sleep 3600 >/dev/null
    $PODMAN run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/rss-busybox sleep 3600 >/dev/null
done
sleep 1

shims=$(for d in "$WORK"/berth/containers/*/; do python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['shim_pid'])" "$d/state.json"; done)
conmons=$(pgrep -f "conmon.*$WORK/podman" || true)

python3 - "$N" "$shims" "$conmons" <<'PY'
import statistics, sys
n, shims, conmons = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
def kib(pid, field, path):
    for line in open(f"/proc/{pid}/{path}"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0
def report(name, pids):
    rss = [kib(p, "VmRSS", "status") for p in pids]
    pss = [kib(p, "Pss", "smaps_rollup") for p in pids]
    print(f"{name:8} {len(pids):3} processes   median RSS {statistics.median(rss)/1024:5.2f} MiB   median PSS {statistics.median(pss)/1024:5.2f} MiB")
    return statistics.median(rss), statistics.median(pss)
print(f"== {n} detached containers each")
b = report("berth", shims)
c = report("conmon", conmons)
print(f"ratio berth/conmon: RSS {b[0]/c[0]:.2f}, PSS {b[1]/c[1]:.2f}")
PY
