#!/usr/bin/env bash
# Issue 11's two targets for `coreforge store serve`, on loopback, in one run:
#   1. a 100 MB snap over HTTPS with curl: from `coreforge store serve`, and from nginx serving
#      the same file with the same certificate (TLS 1.3, sendfile), median of RUNS each,
#      interleaved; target: coreforge at least as fast;
#   2. assertion requests per second (wrk: 2 threads, 32 connections, 10 s, keep-alive) for a
#      snap-revision; target: at least 2,000/s. wrk runs on the same 2 cores as the server.
# Usage: benches/store-serve.sh [RUNS]   (default 5; needs curl, openssl, wrk and nginx:
# cross/setup.sh installs them)
set -euo pipefail
export LC_ALL=C
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in curl openssl wrk nginx; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (cross/setup.sh installs it)" >&2; exit 1; }
done
cargo build --release --quiet -p coreforge --manifest-path "$root/Cargo.toml"
cf=$root/target/release/coreforge
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout key.pem -out cert.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
mkdir -p big/meta static
printf "name: big\nversion: '1'\ntype: app\narchitectures: [all]\n" > big/meta/snap.yaml
head -c 100000000 /dev/urandom > big/data
"$cf" pack big -o big.snap >/dev/null
"$cf" store init store >/dev/null
rev=$("$cf" store upload store big.snap | awk '{ print $2 }')
"$cf" store release store big "$rev" beta >/dev/null
cp big.snap static/big.snap
size=$(stat -c %s big.snap)

"$cf" store serve store --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem > serve.out 2> serve.err &
pids+=($!)
for _ in $(seq 50); do grep -q https serve.out 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's|.*\(https://[^/]*\)/.*|\1|p' serve.out)
[ -n "$base" ] || { echo "error: store serve did not start: $(cat serve.err)" >&2; exit 1; }
answer=$(curl -sS --cacert cert.pem -H 'Snap-Device-Architecture: amd64' \
    -d '{"actions":[{"action":"download","instance-key":"k","name":"big","channel":"beta"}]}' \
    "$base/v2/snaps/refresh")
url=$(echo "$answer" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
hex=$(echo "$answer" | sed -n 's/.*"sha3-384":"\([0-9a-f]*\)".*/\1/p')
digest=$(echo "$hex" | xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '=')

port=$(( 20000 + RANDOM % 20000 ))
cat > nginx.conf <<EOF
user root;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.3;
        root $work/static;
    }
}
EOF
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)
sleep 0.5

fetch() { # url -> seconds
    curl -sS --cacert cert.pem -o /dev/null -w '%{time_total}\n' "$1"
}
declare -A times
fetch "$url" >/dev/null
fetch "https://127.0.0.1:$port/big.snap" >/dev/null
for _ in $(seq "$runs"); do
    times[coreforge]+="$(fetch "$url") "
    times[nginx]+="$(fetch "https://127.0.0.1:$port/big.snap") "
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cf_s=$(echo "${times[coreforge]}" | median)
ng_s=$(echo "${times[nginx]}" | median)

rps=$(wrk -t2 -c32 -d10s -H 'Accept: application/x.ubuntu.assertion' \
    "$base/v2/assertions/snap-revision/$digest" | awk '/Requests\/sec/ { print $2 }')
non2xx=$(wrk -t1 -c1 -d1s "$base/v2/assertions/snap-revision/$digest" | grep -c 'Non-2xx' || true)

verdict() { awk -v ok="$1" 'BEGIN { print ok ? "met" : "MISSED" }'; }
echo
echo "== store serve on loopback ($runs rounds; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "| target | measured | verdict |"
echo "| --- | --- | --- |"
echo "| ${size}-byte snap: store serve <= nginx (curl, HTTPS) | ${cf_s} s vs ${ng_s} s ($(awk -v a="$size" -v t="$cf_s" 'BEGIN { printf "%.0f", a / t / 1e6 }') MB/s vs $(awk -v a="$size" -v t="$ng_s" 'BEGIN { printf "%.0f", a / t / 1e6 }') MB/s) | $(verdict "$(awk -v a="$cf_s" -v b="$ng_s" 'BEGIN { print (a <= b) }')") |"
echo "| assertion requests >= 2,000/s (wrk -t2 -c32, keep-alive) | ${rps}/s$([ "$non2xx" = 0 ] || echo ', with non-2xx answers') | $(verdict "$(awk -v r="$rps" 'BEGIN { print (r >= 2000) }')") |"
