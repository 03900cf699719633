# Shared helpers for the large-object benchmarks (sourced, not run).
#
# Environment knobs (all optional):
#   CACHALOT   proxy binary            (default /tmp/cachalot-bench/cachalot)
#   WORK       scratch folder for origin files, cache dirs, logs
#              (default /var/tmp/cachalot-large.$$; removed at exit unless KEEP=1)
#   BASEPORT   first of the loopback ports used (default 23800; below the
#              ephemeral range so outgoing connections cannot take them)
#
# Every process started here is recorded and killed by pid at exit.

set -u
CACHALOT=${CACHALOT:-/tmp/cachalot-bench/cachalot}
WORK=${WORK:-/var/tmp/cachalot-large.$$}
BASEPORT=${BASEPORT:-23800}
ORIGIN_PORT=$((BASEPORT + 0))
PROXY_PORT=$((BASEPORT + 1))
ADMIN_PORT=$((BASEPORT + 2))
PROXY="http://127.0.0.1:$PROXY_PORT"
ORIGIN="http://127.0.0.1:$ORIGIN_PORT"
ADMIN="http://127.0.0.1:$ADMIN_PORT"

mkdir -p "$WORK"
echo "binary: $CACHALOT ($("$CACHALOT" --version), built $(stat -c %y "$CACHALOT" | cut -d. -f1), sha256 $(sha256sum "$CACHALOT" | cut -c1-16)); $(date -u '+%F %T UTC'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
_PIDS=()
NGINX_PID=
PROXY_PID=
SAMPLER_PID=

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

_cleanup() {
    local p
    for p in "${_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    sleep 0.3
    for p in "${_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    if [ "${KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    fi
    if [ -n "${EXTRA_CLEANUP:-}" ]; then
        eval "$EXTRA_CLEANUP"
    fi
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# make_file PATH BYTES: a file of pseudo-random content (not all zeros, so
# a wrong offset shows in a hash). 1 MiB of urandom repeated with a per-MiB
# counter would be slow in bash; instead 64 MiB of urandom, repeated.
make_file() {
    local path=$1 bytes=$2
    if [ -f "$path" ] && [ "$(stat -c %s "$path")" = "$bytes" ]; then return; fi
    python3 - "$path" "$bytes" <<'EOF'
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
block = os.urandom(64 << 20)
with open(path, "wb") as f:
    i = 0
    while n > 0:
        # vary each repetition a little so no two 64 MiB blocks are equal
        b = i.to_bytes(8, "little") + block[8:]
        w = b[: min(n, len(b))]
        f.write(w)
        n -= len(w)
        i += 1
EOF
}

# start_nginx ROOTDIR [EXTRA_LOCATIONS]: nginx as a user process serving
# ROOTDIR on ORIGIN_PORT with sendfile and `expires 1h`. /obj/N is an alias
# of ROOTDIR/big.bin, /nostore/... answers Cache-Control: no-store.
start_nginx() {
    local root=$1 extra=${2:-}
    local d="$WORK/nginx"
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp;
    proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp;
    uwsgi_temp_path $d/tmp;
    scgi_temp_path $d/tmp;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $root;
        expires 1h;
        location ~ ^/obj/(\d+)\$ { alias $root/big.bin; }
        location /nostore/ { expires off; add_header Cache-Control no-store; try_files /small.bin =404; }
        $extra
    }
}
EOF
    nginx -c "$d/nginx.conf" -p "$d" &
    NGINX_PID=$!
    _PIDS+=("$NGINX_PID")
    local i
    for i in $(seq 50); do
        curl -s -o /dev/null "$ORIGIN/" && return 0
        sleep 0.1
    done
    log "nginx did not start"; cat "$d/error.log" >&2; return 1
}

origin_requests() { # origin_requests REGEX: origin access-log lines matching
    grep -cE "$1" "$WORK/nginx/access.log" || true
}

# write_proxy_config FILE CACHEDIR [EXTRA_TOML]
write_proxy_config() {
    local file=$1 dir=$2 extra=${3:-}
    cat >"$file" <<EOF
[server]
listen = "127.0.0.1:$PROXY_PORT"

[timeouts]
drain = "5s"

[cache]
dir = "$dir"
$extra

[log]
level = "info"
access = "$WORK/proxy-access.log"

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

# Own rules replace the shipped ones (which deny loopback destinations).
[[acl]]
name = "bench-loopback"
action = "allow"
src = ["127.0.0.0/8"]
dst = ["127.0.0.0/8"]
EOF
    "$CACHALOT" check-config "$file" >&2
}

# start_proxy CONFIG: start cachalot, stderr to $WORK/proxy.log (appended)
start_proxy() {
    local conf=$1
    "$CACHALOT" --config "$conf" >>"$WORK/proxy.stdout" 2>>"$WORK/proxy.log" &
    PROXY_PID=$!
    _PIDS+=("$PROXY_PID")
    local i
    for i in $(seq 100); do
        curl -s -o /dev/null "$ADMIN/health" && return 0
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "proxy did not start"; tail -20 "$WORK/proxy.log" >&2; return 1
}

# stop_proxy: SIGTERM, wait, print the seconds it took on stdout
stop_proxy() {
    local t0 t1
    [ -n "$PROXY_PID" ] || return 0
    t0=$(date +%s.%N)
    kill -TERM "$PROXY_PID" 2>/dev/null
    local i
    for i in $(seq 600); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$PROXY_PID" 2>/dev/null; then
        log "proxy still alive 30 s after SIGTERM; SIGKILL"; kill -9 "$PROXY_PID"
    fi
    wait "$PROXY_PID" 2>/dev/null
    t1=$(date +%s.%N)
    PROXY_PID=
    python3 -c "print(f'{$t1-$t0:.3f}')"
}

# start_sampler PID OUTFILE: VmRSS/VmHWM every 0.5 s until PID exits or
# stop_sampler. Lines: epoch rss_kib hwm_kib
start_sampler() {
    local pid=$1 out=$2
    (
        while [ -r "/proc/$pid/status" ]; do
            awk -v t="$(date +%s.%N)" '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{if(r!="") print t, r, h}' \
                "/proc/$pid/status" 2>/dev/null
            sleep 0.5
        done
    ) >"$out" &
    SAMPLER_PID=$!
    _PIDS+=("$SAMPLER_PID")
}
stop_sampler() { [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=; }

# rss_summary FILE: "peak VmRSS X MiB, VmHWM Y MiB (N samples)"
rss_summary() {
    awk '{if($2>r)r=$2; if($3>h)h=$3; n++} END{printf "peak VmRSS %.1f MiB, VmHWM %.1f MiB (%d samples)\n", r/1024, h/1024, n}' "$1"
}

metric() { # metric REGEX: matching lines of /metrics
    curl -s "$ADMIN/metrics" | grep -E "$1" || true
}

access_codes() { # counts of Squid result codes in the proxy access log
    awk '{print $4}' "$WORK/proxy-access.log" 2>/dev/null | sort | uniq -c
}

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2-$1:.2f}')"; }
mibps() { python3 -c "print(f'{$1/1048576/($3-$2):.0f}')"; } # bytes t0 t1
