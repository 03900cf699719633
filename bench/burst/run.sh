#!/usr/bin/env bash
# Memory after a burst (issue 15): N parallel downloads of distinct M-MiB
# cacheable objects through cachalot, then idle; prints the proxy's peak RSS
# (VmHWM) and its RSS 10 s after the burst. Origin: nginx on loopback.
#   bench/burst/run.sh [BINARY]    (N=50 SIZE_MIB=60 by default)
set -euo pipefail
BIN=${1:-target/release/cachalot}
N=${N:-50}
SIZE_MIB=${SIZE_MIB:-60}
PORT_ORIGIN=${PORT_ORIGIN:-18581}
PORT_PROXY=${PORT_PROXY:-18528}
WORK=$(mktemp -d /tmp/cachalot-burst.XXXXXX)
cleanup() {
    [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null || true
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/logs"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$WORK/www/big.bin"
mkdir -p "$WORK/www/obj"
for i in $(seq "$N"); do ln -s "$WORK/www/big.bin" "$WORK/www/obj/$i"; done
cat > "$WORK/nginx.conf" <<CONF
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $WORK/tmp;
    proxy_temp_path $WORK/tmp;
    fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp;
    scgi_temp_path $WORK/tmp;
    server {
        listen 127.0.0.1:$PORT_ORIGIN;
        root $WORK/www;
        location /obj/ { expires 1h; }
    }
}
CONF
mkdir -p "$WORK/tmp"
nginx -c "$WORK/nginx.conf" -p "$WORK"
cat > "$WORK/cachalot.toml" <<CONF
[server]
listen = "127.0.0.1:$PORT_PROXY"
[cache]
dir = "$WORK/cache"
disk_size = "$(( N * SIZE_MIB * 2 ))MiB"
max_object_size = "$(( SIZE_MIB * 2 ))MiB"
[log]
level = "warn"
[[acl]]
name = "bench"
action = "allow"
src = ["127.0.0.0/8"]
dst = ["127.0.0.0/8"]
CONF
"$BIN" --config "$WORK/cachalot.toml" & PROXY_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT_PROXY/" && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$PROXY_PID/status"; }
hwm() { awk '/^VmHWM/ {print int($2/1024)}' "/proc/$PROXY_PID/status"; }
echo "before: RSS $(rss) MiB"
start=$(date +%s.%N)
for i in $(seq "$N"); do
    curl -s -o /dev/null -w "%{http_code} %{size_download}\n" -x "http://127.0.0.1:$PORT_PROXY" "http://127.0.0.1:$PORT_ORIGIN/obj/$i" >> "$WORK/curl.out" &
done
wait_pids=$(jobs -p | grep -v "^$PROXY_PID\$" || true)
for p in $wait_pids; do wait "$p" || true; done
sort "$WORK/curl.out" | uniq -c | sed "s/^/  curl: /"
took=$(echo "$(date +%s.%N) - $start" | bc)
echo "burst: $N x $SIZE_MIB MiB in ${took}s; peak RSS (VmHWM) $(hwm) MiB; RSS right after $(rss) MiB"
sleep 10
echo "idle 10 s later: RSS $(rss) MiB"
