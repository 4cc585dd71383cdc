#!/usr/bin/env bash
# Input hashing of a copy source (cache keys): berth's hash_tree against
# `tar -c DIR | b3sum` and `tar -c DIR | sha256sum` on the same tree of
# 10,000 files and 500 MiB, page cache warm. Run from the repo root:
#
#     bash bench/hash.sh            # RUNS=7 WARMUP=2 by default
#
# Needs python3 (tree generation), hyperfine and b3sum (installed with apt
# when missing and running as root). Generation time is not measured.
set -euo pipefail

RUNS=${RUNS:-7}
WARMUP=${WARMUP:-2}
FILES=10000
LARGE=100
TOTAL=$((500 * 1024 * 1024))

cd "$(dirname "$0")/.."
. bench/lib.sh
[[ -f Cargo.toml ]] || { echo "hash.sh: run it from the berth repo" >&2; exit 2; }

need python3 python3 || { echo "hash.sh: python3 is needed to generate the tree" >&2; exit 1; }
need hyperfine hyperfine || { echo "hash.sh: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
if need b3sum b3sum; then
    B3="b3sum"
else
    echo "hash.sh: b3sum not available; the blake3 peer is left out, sha256sum stays" >&2
    B3=""
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-hash-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/tree"

echo "== generating $FILES files, $((TOTAL / 1024 / 1024)) MiB in $TREE"
python3 - "$TREE" "$FILES" "$LARGE" "$TOTAL" <<'EOF'
import os, random, sys
root, files, large, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20240601)
small = files - large
# Small files of 1-9 KiB (mean 5 KiB); the large ones (about 4.5 MiB) share
# what is left in random weights of 0.9-1.1, the last one taking the rounding.
sizes = [rng.randint(1024, 9 * 1024) for _ in range(small)]
left = total - sum(sizes)
weights = [rng.uniform(0.9, 1.1) for _ in range(large)]
big = [int(left * w / sum(weights)) for w in weights]
big[-1] += left - sum(big)
assert min(big) > 0 and sum(sizes) + sum(big) == total
sizes += big
rng.shuffle(sizes)
pool = os.urandom(16 * 1024 * 1024)  # random, but cheap to slice from
for i, size in enumerate(sizes):
    d = os.path.join(root, f"d{i % 10}", f"s{i // 10 % 10}")
    os.makedirs(d, exist_ok=True)
    off = rng.randrange(0, len(pool) - min(size, len(pool)) + 1)
    with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
        while size:
            n = min(size, len(pool) - off)
            f.write(pool[off:off + n])
            size -= n
            off = 0
EOF
echo "   $(find "$TREE" -type f | wc -l) files, $(du -sb "$TREE" | cut -f1) bytes (with dirs)"

echo "== building examples/hash_tree (release)"
cargo build --quiet --release --example hash_tree
BERTH="$PWD/target/release/examples/hash_tree"
"$BERTH" "$TREE" .

cmds=(-n berth "$BERTH $TREE .")
[[ -n $B3 ]] && cmds+=(-n "tar|b3sum" "tar -cf - -C $TREE . | b3sum")
cmds+=(-n "tar|sha256sum" "tar -cf - -C $TREE . | sha256sum")

echo "== hyperfine: $WARMUP warmup runs (warm page cache), $RUNS runs each, $(nproc) cores"
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/result.json" "${cmds[@]}"

python3 - "$WORK/result.json" <<'EOF'
import json, sys
results = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
berth = results.pop("berth")
print("\n== medians (seconds), 10,000 files, 500 MiB")
print(f"{'berth hash_tree':<16} {berth:8.3f}")
for name, median in results.items():
    print(f"{name:<16} {median:8.3f}   berth/peer = {berth / median:.2f}")
EOF
