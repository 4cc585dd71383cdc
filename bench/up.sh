#!/usr/bin/env bash
# The reconciler: berth against podman-compose on the same 5-env project
# (a busybox base, five envs that each copy a file and run `sleep`), in the
# same run: cold `up -d` (empty store: build 5 images, start 5 containers),
# no-op `up -d` (everything up to date), and `plan` (what would change),
# whose peer is a podman script running a no-op `podman build` per env.
# Run from the repo root as root:
#
#     bash bench/up.sh                # RUNS=10 WARMUP=1 by default
#
# Needs hyperfine, podman, runc and podman-compose (installed with apt when
# missing). podman runs with its own temporary root, runc and cgroupfs.
set -euo pipefail

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
need hyperfine hyperfine; need podman podman; need runc runc; need podman-compose podman-compose; need python3 python3
# berth up gives the project network outbound access with nft.
need nft nftables

cargo build --release -q
BERTH_BIN="$PWD/target/release/berth"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-up-bench.XXXXXX")
P=$WORK/project
mkdir -p "$P" "$WORK/bin"
# podman-compose calls `podman`: this one keeps everything in $WORK.
cat > "$WORK/bin/podman" <<SH
#!/bin/sh
exec /usr/bin/$(podman_in "$WORK") "\$@"
SH
chmod +x "$WORK/bin/podman"
PODMAN=$WORK/bin/podman
COMPOSE="podman-compose --podman-path $PODMAN -f $P/compose.yaml -p bench"
cleanup() {
    $BERTH_BIN --root "$WORK/berth" down -f "$P/berth.toml" >/dev/null 2>&1 || true
    $BERTH_BIN --root "$WORK/berth-cold" down -f "$P/berth.toml" >/dev/null 2>&1 || true
    $COMPOSE down -t 0 >/dev/null 2>&1 || true
    $PODMAN system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash fixtures/images/busybox.sh "$P/busybox.tar" >/dev/null
$PODMAN import -q "$P/busybox.tar" localhost/bench-busybox >/dev/null
{
    echo 'project = "bench"'
    echo '[env.base]'
    echo 'image = "rootfs:busybox.tar"'
    echo 'services:' >&3
    for i in 1 2 3 4 5; do
        echo "svc$i" > "$P/file$i"
        printf '[env.svc%s]\nfrom = "base"\ncopy = [{ src = "file%s", dest = "/file" }]\ncmd = ["sleep", "3600"]\n' "$i" "$i"
        mkdir -p "$P/svc$i"
        cp "$P/file$i" "$P/svc$i/file"
        printf 'FROM localhost/bench-busybox\nCOPY file /file\n' > "$P/svc$i/Containerfile"
        printf '  svc%s:\n    build: ./svc%s\n    image: localhost/bench-svc%s\n    command: ["sleep", "3600"]\n    network_mode: none\n    ulimits:\n      nofile: 1024\n      nproc: 1024\n' "$i" "$i" "$i" >&3
    done
} > "$P/berth.toml" 3> "$P/compose.yaml"
printf 'busybox.tar\ncompose.yaml\nsvc*\n' > "$P/.berthignore"
PODMAN_PLAN="bash -c 'for i in 1 2 3 4 5; do $PODMAN build -q -t localhost/bench-svc\$i $P/svc\$i >/dev/null || exit 1; done'"

# The warm state both no-op runs start from.
$BERTH_BIN --root "$WORK/berth" up -d -f "$P/berth.toml" 2>/dev/null
$COMPOSE up -d >/dev/null 2>&1

run() { # run NAME BERTH_CMD PODMAN_CMD BERTH_PREPARE PODMAN_PREPARE
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$1.json" \
        --prepare "$4" -n berth "$2" --prepare "$5" -n podman "$3" >/dev/null
    median "$WORK/$1.json"
}

read -r BC PC < <(run cold \
    "$BERTH_BIN --root $WORK/berth-cold up -d -f $P/berth.toml" \
    "$COMPOSE up -d" \
    "bash -c '$BERTH_BIN --root $WORK/berth-cold down -f $P/berth.toml >/dev/null 2>&1; rm -rf $WORK/berth-cold'" \
    "bash -c '$COMPOSE down -t 0 >/dev/null 2>&1; for i in 1 2 3 4 5; do $PODMAN rmi -f localhost/bench-svc\$i >/dev/null 2>&1; done; true'")
$COMPOSE up -d >/dev/null 2>&1
read -r BN PN < <(run noop \
    "$BERTH_BIN --root $WORK/berth up -d -f $P/berth.toml" \
    "$COMPOSE up -d" "true" "true")
read -r BP PP < <(run plan \
    "$BERTH_BIN --root $WORK/berth plan -f $P/berth.toml" \
    "$PODMAN_PLAN" "true" "true")

python3 - "$BC" "$PC" "$BN" "$PN" "$BP" "$PP" <<'PY'
import sys
bc, pc, bn, pn, bp, pp = map(float, sys.argv[1:])
print(f"{'5 envs':26}{'berth s':>9}{'podman s':>10}{'berth/podman':>14}")
print(f"{'cold up -d':26}{bc:9.3f}{pc:10.3f}{bc/pc:14.2f}")
print(f"{'no-op up -d':26}{bn:9.3f}{pn:10.3f}{bn/pn:14.2f}   (goal: berth < 0.030 s)")
print(f"{'plan (podman: 5 builds)':26}{bp:9.3f}{pp:10.3f}{bp/pp:14.2f}   (goal: berth < 0.030 s)")
PY
