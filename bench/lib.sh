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
