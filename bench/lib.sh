# Shared by the bench scripts (sourced from the repo root, after `cd`):
#
#   need_root            fail unless run as root (containers need it)
#   need CMD PACKAGE     install PACKAGE with apt when CMD is missing;
#                        fails (status 1, saying so) if it still is
#   median FILE [ms]     the medians of a hyperfine --export-json FILE,
#                        in seconds (4 decimals) or, with `ms`, milliseconds
BENCH=$(basename "$0")

need_root() {
    [[ $(id -u) -eq 0 ]] || { echo "$BENCH: containers need root" >&2; exit 2; }
}

need() {
    command -v "$1" >/dev/null && return 0
    echo "$BENCH: installing $2" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null ||
        { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
    command -v "$1" >/dev/null || { echo "$BENCH: $1 is needed (apt-get install $2)" >&2; return 1; }
}

median() {
    python3 -c "import json,sys
r = json.load(open(sys.argv[1]))['results']
ms = len(sys.argv) > 2
print(' '.join(('%.1f' % (x['median'] * 1000)) if ms else ('%.4f' % x['median']) for x in r))" "$@"
}

# pair NAME BERTH_CMD PEER_CMD PREPARE: hyperfine runs both commands
# ($RUNS runs after $WARMUP, PREPARE before each) and prints berth's and the
# peer's medians (WORK holds the JSON).
pair() {
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/$1.json" --prepare "$4" \
        -n berth "$2" -n podman "$3" >/dev/null 2>&1
    median "$WORK/$1.json"
}

# debian_root: prints the path of a Debian bookworm minbase root tar, made
# once with mmdebstrap and kept in target/bench/.
debian_root() {
    need mmdebstrap mmdebstrap || return 1
    mkdir -p target/bench
    local tar=$PWD/target/bench/debian-bookworm.tar
    [[ -s $tar ]] || SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --variant=minbase bookworm "$tar" \
        http://deb.debian.org/debian >&2 || { rm -f "$tar"; return 1; }
    echo "$tar"
}

# podman_in DIR: prints a podman command line whose store lives in DIR
# (runc, cgroupfs, overlay, no event log): nothing of the machine's podman
# state is read or changed.
podman_in() {
    echo "podman --root $1/podman --runroot $1/podman-run --cgroup-manager cgroupfs --events-backend none --runtime runc --storage-driver overlay"
}
