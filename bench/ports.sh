#!/usr/bin/env bash
# Published ports: berth's against podman's rootful `-p`, both through the
# kernel's DNAT (berth's in its table inet berth for a container with a
# bridge address, podman's set up by netavark or CNI), same busybox image,
# same run.
# Run from the repo root as root:
#
#     bash bench/ports.sh             # SIZE_MIB=1024 REQUESTS=2000 ROUNDS=3
#
# throughput: SIZE_MIB pushed through 127.0.0.1:PORT to `nc -l` in the
#             container (a sink), ROUNDS times: the median MiB/s
# requests:   REQUESTS short HTTP requests (a new connection each, HTTP/1.0)
#             to busybox httpd in the container: the median and p90
#             latency per request
# Both peers publish on 127.0.0.1, berth's default, from a container on a
# bridge (`--network bridge`; an `up` project's envs are the same). Goal (issue 14):
# throughput >= 0.8x podman's, request latency <= 1.0x.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
REQUESTS=${REQUESTS:-2000}
ROUNDS=${ROUNDS:-3}

cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
need podman podman && need runc runc && need python3 python3 && need nft nftables

cargo build --release -q
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-ports-bench.XXXXXX")
BERTH="$PWD/target/release/berth --root $WORK/berth"
PODMAN=$(podman_in "$WORK")
cleanup() {
    $BERTH rm -f b-sink b-web >/dev/null 2>&1 || true
    $PODMAN rm -f -t 0 p-sink p-web >/dev/null 2>&1 || true
    $PODMAN system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash fixtures/images/busybox.sh "$WORK/busybox.tar" >/dev/null
$BERTH import "$WORK/busybox.tar" ports-busybox >/dev/null
$PODMAN import -q "$WORK/busybox.tar" localhost/ports-busybox >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A persistent sink: nc -ll serves every connection, each with its own cat.
SINK='printf "#!/bin/sh\nexec cat > /dev/null\n" > /sink && chmod +x /sink && exec nc -ll -p 9000 -e /sink'
WEB='mkdir -p /www && echo hello > /www/i && exec httpd -f -p 8000 -h /www'
PODMAN_RUN=(run -d --network bridge --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

bs=$(free_port); bw=$(free_port)
$BERTH run -d --network bridge --name b-sink -p "127.0.0.1:$bs:9000" ports-busybox sh -c "$SINK" >/dev/null
$BERTH run -d --network bridge --name b-web -p "127.0.0.1:$bw:8000" ports-busybox sh -c "$WEB" >/dev/null
# The DNAT path, not the proxy: each port becomes an element of the map
# once the shim has opened it.
for p in "$bs" "$bw"; do
    for _ in $(seq 600); do
        nft list map inet berth ports4 | grep -q "127.0.0.1 . tcp . $p :" && continue 2
        sleep 0.1
    done
    echo "port $p never showed in berth's DNAT map" >&2
    exit 1
done
ps=$(free_port); pw=$(free_port)
$PODMAN "${PODMAN_RUN[@]}" --name p-sink -p "127.0.0.1:$ps:9000" localhost/ports-busybox sh -c "$SINK" >/dev/null
$PODMAN "${PODMAN_RUN[@]}" --name p-web -p "127.0.0.1:$pw:8000" localhost/ports-busybox sh -c "$WEB" >/dev/null

python3 - "$SIZE_MIB" "$REQUESTS" "$ROUNDS" "$bs" "$bw" "$ps" "$pw" <<'PY'
import socket, statistics, sys, time

size_mib, requests, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
bs, bw, ps, pw = map(int, sys.argv[4:8])

def ready(port, http):
    # Wait until the container answers through the published port.
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if http:
                return get(port)
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never answered")

def push(port):
    chunk = b"\0" * (1 << 20)
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(size_mib):
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    return size_mib / (time.perf_counter() - start)

def get(port):
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /i HTTP/1.0\r\n\r\n")
        body = b""
        while data := s.recv(4096):
            body += data
    if not body.endswith(b"hello\n"):
        raise OSError(f"unexpected answer {body[-40:]!r}")
    return time.perf_counter() - start

for port, http in ((bs, False), (ps, False), (bw, True), (pw, True)):
    ready(port, http)

rate = {"berth": [], "podman": []}
for _ in range(rounds):  # alternate, so that other work slows both alike
    rate["berth"].append(push(bs))
    rate["podman"].append(push(ps))
lat = {"berth": [], "podman": []}
for _ in range(requests):
    lat["berth"].append(get(bw))
    lat["podman"].append(get(pw))

def p90(xs):
    return sorted(xs)[int(len(xs) * 0.9)]

print(f"== {size_mib} MiB through a published port, median of {rounds}")
for k, v in rate.items():
    print(f"{k:7} {statistics.median(v):8.0f} MiB/s")
print(f"ratio berth/podman: {statistics.median(rate['berth']) / statistics.median(rate['podman']):.2f} (goal >= 0.8)")
print(f"== {requests} HTTP requests, a connection each")
for k, v in lat.items():
    print(f"{k:7} median {statistics.median(v) * 1000:6.3f} ms   p90 {p90(v) * 1000:6.3f} ms")
print(f"ratio berth/podman: {statistics.median(lat['berth']) / statistics.median(lat['podman']):.2f} (goal <= 1.0)")
PY
