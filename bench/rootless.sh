#!/usr/bin/env bash
# berth without root against podman without root, and against berth as
# root, on the same busybox image, in the same run. Run from the repo root
# as root (it makes the unprivileged user and runs everything else as it):
#
#     bash bench/rootless.sh          # RUNS=30 WARMUP=3 by default
#
# start: `berth run --rm IMG true` (rootless)  vs  `podman run --rm` (rootless,
#        same user, runc, --network none)  vs  `berth run --rm` as root
# exec:  `berth exec NAME true` (rootless)  vs  `podman exec NAME true` (rootless)
# enter: `berth ps` (does not enter the user namespace) vs `berth rm NOSUCH`
#        (joins it, then fails): the cost of joining the namespace
#
# The user is `berthtest` with subordinate ids 200000-265535 (what the
# tests make; made here if missing, and left in place). Every store lives in
# a temp dir removed at exit; the user-namespace holders of berth's store and
# podman's pause process are ended by pid.
set -euo pipefail

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
USER_NAME=berthtest

cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
[[ -f Cargo.toml ]] || { echo "rootless.sh: run it from the berth repo" >&2; exit 2; }
need hyperfine hyperfine && need runc runc && need podman podman && need python3 python3
need newuidmap uidmap && need setpriv util-linux

id -u "$USER_NAME" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh "$USER_NAME"
grep -q "^$USER_NAME:200000:" /etc/subuid && grep -q "^$USER_NAME:200000:" /etc/subgid ||
    usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$USER_NAME"

cargo build --release -q
BIN=$PWD/target/release/berth
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-rootless-bench.XXXXXX")
chmod 755 "$WORK"
mkdir -p "$WORK/home" "$WORK/run"
chown "$USER_NAME:" "$WORK/home" "$WORK/run"
chmod 700 "$WORK/run"
AS_USER=(setpriv --reuid "$USER_NAME" --regid "$USER_NAME" --init-groups --
    env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$WORK/home"
    XDG_RUNTIME_DIR="$WORK/run" XDG_DATA_HOME="$WORK/home/.local/share")
UBERTH="$BIN --root $WORK/home/berth"
RBERTH="$BIN --root $WORK/berth-root"
UPODMAN="podman --root $WORK/home/podman --runroot $WORK/run/podman --cgroup-manager cgroupfs \
--events-backend none --runtime runc --storage-driver overlay"
LIMITS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
cleanup() {
    "${AS_USER[@]}" $UBERTH rm -f bench-exec >/dev/null 2>&1 || true
    "${AS_USER[@]}" $UPODMAN rm -f -t 0 bench-exec >/dev/null 2>&1 || true
    local pid
    for f in "$WORK/home/berth/userns/pid" "$WORK/run/libpod/tmp/pause.pid"; do
        pid=$(cat "$f" 2>/dev/null) && kill "$pid" 2>/dev/null || true
    done
    "${AS_USER[@]}" $UPODMAN system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash fixtures/images/busybox.sh "$WORK/busybox.tar" >/dev/null
chmod 644 "$WORK/busybox.tar"
"${AS_USER[@]}" $UBERTH import "$WORK/busybox.tar" bench-busybox >/dev/null
$RBERTH import "$WORK/busybox.tar" bench-busybox >/dev/null
"${AS_USER[@]}" $UPODMAN import -q "$WORK/busybox.tar" localhost/bench-busybox >/dev/null

# hyperfine itself runs as the user for the rootless commands: nothing but
# the command is timed.
echo "== start: rootless berth run --rm vs rootless podman run --rm vs berth run --rm as root ($RUNS runs, $WARMUP warmup)"
"${AS_USER[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/run/start.json" \
    -n berth "$UBERTH run --rm bench-busybox true" \
    -n podman "$UPODMAN run --rm --network none $LIMITS localhost/bench-busybox true" >/dev/null
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/root-start.json" \
    -n berth-root "$RBERTH run --rm bench-busybox true" >/dev/null
read -r B P < <(median "$WORK/run/start.json" ms)
read -r R < <(median "$WORK/root-start.json" ms)

"${AS_USER[@]}" $UBERTH run -d --name bench-exec bench-busybox sleep 3600 >/dev/null
"${AS_USER[@]}" $UPODMAN run -d --name bench-exec --network none $LIMITS localhost/bench-busybox sleep 3600 >/dev/null
echo "== exec: rootless berth exec vs rootless podman exec"
"${AS_USER[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/run/exec.json" \
    -n berth "$UBERTH exec bench-exec true" \
    -n podman "$UPODMAN exec bench-exec true" >/dev/null
read -r BE PE < <(median "$WORK/run/exec.json" ms)

echo "== enter: rootless berth ps (no namespace) vs berth inspect-free verb that joins it"
"${AS_USER[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" -i --export-json "$WORK/run/enter.json" \
    -n outside "$UBERTH ps -q" \
    -n joined "$UBERTH rm no-such-container" >/dev/null
read -r O J < <(median "$WORK/run/enter.json" ms)

python3 - "$B" "$P" "$R" "$BE" "$PE" "$O" "$J" <<'PY'
import sys
b, p, r, be, pe, o, j = map(float, sys.argv[1:])
print(f"start  berth rootless {b:7.1f} ms   podman rootless {p:7.1f} ms   ratio {b/p:.2f}x   (goal <= 0.25x)")
print(f"start  berth rootless {b:7.1f} ms   berth as root   {r:7.1f} ms   ratio {b/r:.2f}x   (goal <= 1.3x)")
print(f"exec   berth rootless {be:7.1f} ms   podman rootless {pe:7.1f} ms   ratio {be/pe:.2f}x")
print(f"enter  berth ps (outside) {o:5.1f} ms   a verb that joins the namespace {j:5.1f} ms   (+{j-o:.1f} ms)")
PY
