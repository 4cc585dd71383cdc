#!/usr/bin/env bash
# Registry: berth push and pull against `skopeo copy` of the same image, in
# the same run, with a real `docker-registry` on 127.0.0.1. The image is
# about 200 MiB in 5 layers: the busybox fixture plus four layers of 50 MiB
# of random data each, built by berth (so gzip cannot shrink them). Run
# from the repo root as root:
#
#     bash bench/registry.sh          # RUNS=10 WARMUP=1 by default
#
# push: the image from a berth store (an OCI layout) to an empty registry
#       (its storage is wiped before each run): `berth push` vs
#       `skopeo copy oci:STORE/oci:TAG docker://…`.
# pull: from the registry into an empty store / directory: `berth pull`
#       vs `skopeo copy docker://… oci:DIR:TAG`.
# Needs hyperfine, skopeo and docker-registry (installed with apt when
# missing). Nothing leaves 127.0.0.1.
set -euo pipefail

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
need hyperfine hyperfine; need skopeo skopeo; need docker-registry docker-registry; need python3 python3

cargo build --release -q
BERTH_BIN="$PWD/target/release/berth"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-registry-bench.XXXXXX")
REG_PID=
cleanup() {
    if [[ -n $REG_PID ]]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The registry, on a free loopback port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

# The image: busybox plus four 50 MiB random layers, built by berth.
P=$WORK/project
mkdir -p "$P"
bash fixtures/images/busybox.sh "$P/busybox.tar"
cat > "$P/berth.toml" <<'TOML'
project = "regbench"

[env.big]
image = "rootfs:busybox.tar"
run = [
    "head -c 52428800 /dev/urandom > /r1",
    "head -c 52428800 /dev/urandom > /r2",
    "head -c 52428800 /dev/urandom > /r3",
    "head -c 52428800 /dev/urandom > /r4",
]
TOML
SRC=$WORK/source
read -r _ TAG _ < <($BERTH_BIN --root "$SRC" build -q -f "$P/berth.toml")
LAYERS=$($BERTH_BIN --root "$SRC" inspect "$TAG" | python3 -c 'import json,sys; m=json.load(sys.stdin)[0]["Manifest"]; print(len(m["layers"]), sum(l["size"] for l in m["layers"]))')
echo "image $TAG: $LAYERS (layers, bytes)"

# Both tools push the same image to the registry once, so that pulls find it.
$BERTH_BIN --root "$SRC" push -q "$TAG" "$REG/bench/berth:1" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$SRC/oci:$TAG" "docker://$REG/bench/skopeo:1"

run() { # run NAME BERTH_CMD SKOPEO_CMD PREPARE
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$1.json" --prepare "$4" \
        -n berth "$2" -n skopeo "$3" >/dev/null 2>&1
    median "$WORK/$1.json"
}

WIPE="bash -c 'rm -rf $WORK/registry/docker/registry/v2/repositories/bench/push-* $WORK/registry/docker/registry/v2/blobs; sync'"
read -r BP SP < <(run push \
    "$BERTH_BIN --root $SRC push -q $TAG $REG/bench/push-berth:1" \
    "skopeo copy -q --dest-tls-verify=false oci:$SRC/oci:$TAG docker://$REG/bench/push-skopeo:1" \
    "$WIPE")

# The pushes above wiped the blobs: push once more for the pulls.
$BERTH_BIN --root "$SRC" push -q "$TAG" "$REG/bench/berth:1" >/dev/null
read -r BL SL < <(run pull \
    "$BERTH_BIN --root $WORK/pulled pull -q $REG/bench/berth:1" \
    "skopeo copy -q --src-tls-verify=false docker://$REG/bench/berth:1 oci:$WORK/skopeo-pulled:1" \
    "bash -c 'rm -rf $WORK/pulled $WORK/skopeo-pulled; sync'")

python3 - "$BP" "$SP" "$BL" "$SL" <<'PY'
import sys
bp, sp, bl, sl = map(float, sys.argv[1:])
print(f"{'':22}{'berth s':>9}{'skopeo s':>10}{'berth/skopeo':>14}")
print(f"{'push 200 MiB, 5 layers':22}{bp:9.3f}{sp:10.3f}{bp/sp:14.2f}   (goal: <= 1)")
print(f"{'pull 200 MiB, 5 layers':22}{bl:9.3f}{sl:10.3f}{bl/sl:14.2f}   (goal: <= 1)")
PY
