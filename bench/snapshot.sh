#!/usr/bin/env bash
# Commit, export and save: berth against podman on the same container, in the same
# run. Run from the repo root as root:
#
#     bash bench/snapshot.sh          # RUNS=10 WARMUP=1 by default
#
# A Debian base (made once with mmdebstrap, kept in target/bench/, imported
# into both stores), one running container each (`sleep infinity`) holding a
# 50 MiB change: 500 files of 100 KiB of random bytes in /data, plus three
# deletions. Before each timed run one small file (/data/stamp) is rewritten
# in both containers, so every commit makes a new layer blob (and writes it)
# rather than finding the last one already stored; `sync` then starts each
# run with no dirty pages from the one before.
#
# commit: `berth commit C TAG`              vs  `podman commit -q C TAG`
# export: `berth export C -o FILE`           vs  `podman export -o FILE C`
# save:   `berth save TAG -o FILE`           vs  `podman save --format oci-archive -o FILE TAG`
#         (the image the last commit made; the stamp rewrite before each
#         run does not change it)
#
# Each side does what it does by default: berth freezes the container,
# gzips the layer (level 1, on every core), computes both digests while
# writing and fsyncs the blob; podman does not pause, compress or fsync.
# Needs hyperfine, podman, runc and mmdebstrap (installed with apt when
# missing). Every store lives in a temp dir removed at exit.
set -euo pipefail

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
[[ -f Cargo.toml ]] || { echo "snapshot.sh: run it from the berth repo" >&2; exit 2; }
need hyperfine hyperfine && need podman podman && need runc runc && need python3 python3

cargo build --release -q
DEBIAN=$(debian_root)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-snapshot-bench.XXXXXX")
BERTH="$PWD/target/release/berth --root $WORK/berth"
PODMAN=$(podman_in "$WORK")
LIMITS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
cleanup() {
    $BERTH rm -f bench-snap >/dev/null 2>&1 || true
    $PODMAN rm -f -t 0 bench-snap >/dev/null 2>&1 || true
    $PODMAN system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The same base and the same change in both.
$BERTH import "$DEBIAN" bench-debian >/dev/null
$PODMAN import -q "$DEBIAN" localhost/bench-debian >/dev/null
CHANGE='mkdir /data && for i in $(seq -w 500); do head -c 102400 /dev/urandom > /data/f$i; done &&
        rm -f /etc/motd /etc/issue.net /usr/share/doc/apt/changelog.gz && touch /ready'
$BERTH run -d --name bench-snap bench-debian sleep infinity >/dev/null
$PODMAN run -d --name bench-snap --network none $LIMITS localhost/bench-debian sleep infinity >/dev/null
$BERTH exec bench-snap sh -c "$CHANGE"
$PODMAN exec bench-snap sh -c "$CHANGE"
STAMP="sh -c 'head -c 4096 /dev/urandom > /data/stamp'"

run() { # run NAME BERTH_CMD PODMAN_CMD
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$1.json" \
        --prepare "bash -c \"$BERTH exec bench-snap $STAMP && $PODMAN exec bench-snap $STAMP && sync\"" \
        -n berth "$2" -n podman "$3" >/dev/null
    median "$WORK/$1.json"
}

echo "== commit: 50 MiB in 500 files + 3 deletions on Debian ($RUNS runs, $WARMUP warmup)" >&2
read -r BC PC < <(run commit \
    "$BERTH commit bench-snap bench-snap:latest" \
    "$PODMAN commit -q bench-snap localhost/bench-snap:latest")
echo "== export: the whole filesystem as a tar ($RUNS runs, $WARMUP warmup)" >&2
read -r BE PE < <(run export \
    "$BERTH export bench-snap -o $WORK/berth.tar" \
    "$PODMAN export -o $WORK/podman.tar bench-snap")
SIZES="$(stat -c %s "$WORK/berth.tar") $(stat -c %s "$WORK/podman.tar")"
echo "== save: the committed image as an OCI archive ($RUNS runs, $WARMUP warmup)" >&2
read -r BS PS < <(run save \
    "$BERTH save bench-snap:latest -o $WORK/berth-save.tar" \
    "$PODMAN save -q --format oci-archive -o $WORK/podman-save.tar localhost/bench-snap:latest")

python3 - "$BC" "$PC" "$BE" "$PE" "$BS" "$PS" $SIZES <<'PY'
import sys
bc, pc, be, pe, bs_, ps_ = map(float, sys.argv[1:7])
bs, ps = map(int, sys.argv[7:9])
print(f"{'':16}{'berth s':>9}{'podman s':>10}{'berth/podman':>14}")
print(f"{'commit':16}{bc:9.3f}{pc:10.3f}{bc/pc:14.2f}   (goal: <= 0.5)")
print(f"{'export':16}{be:9.3f}{pe:10.3f}{be/pe:14.2f}   (goal: <= 0.5)")
print(f"{'save':16}{bs_:9.3f}{ps_:10.3f}{bs_/ps_:14.2f}   (goal: <= 0.5)")
print(f"export tar sizes: berth {bs/2**20:.1f} MiB, podman {ps/2**20:.1f} MiB")
PY
