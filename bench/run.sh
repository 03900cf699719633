#!/usr/bin/env bash
# cachalot's benchmark: cachalot against Squid and nginx on this machine,
# interleaved round by round. See bench/README.md.
#
#   bench/run.sh                  every scenario
#   bench/run.sh hit1k miss       chosen scenarios (or SCENARIOS=hit1k,miss)
#
# Knobs (environment): ROUNDS (3), SECONDS per round (5), PROXIES (subset of
# squid,nginx,cachalot,cachalot-nolog), SCENARIOS, WARMUP (1), TUNNELS (4),
# C10K_CONNS (10000), DISK_OBJECTS (1500).
#
# Every server binds 127.0.0.1 on a fixed port. The script stops exactly the
# processes it started, by PID (and start time), on success, error or signal.
set -euo pipefail

# bash counts SECONDS up from the value it was given (SECONDS=2 reads 40 after
# a 38 s build), so take the value from the environment the script began with.
round_seconds=$(tr '\0' '\n' <"/proc/$$/environ" | sed -n 's/^SECONDS=//p' | head -n 1)
round_seconds=${round_seconds:-5}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-1}
tunnels=${TUNNELS:-4}
c10k_conns=${C10K_CONNS:-10000}
disk_objects=${DISK_OBJECTS:-1500}

# Below Linux's ephemeral range (32768-60999): a port in that range can be
# held by any program's outgoing connection (or its TIME_WAIT), and then the
# server cannot bind it.
readonly ORIGIN_PORT=31080 SLOW_PORT=31081 SQUID_PORT=31128 NGINX_PORT=31129
readonly CACHALOT_PORT=31200 NOLOG_PORT=31201 DISK_PORT=31202
readonly CACHALOT_ADMIN=31300 NOLOG_ADMIN=31301 DISK_ADMIN=31302
readonly ALL_SCENARIOS="hit1k hit1k-named hit1m miss miss-named tunnel c10k coalesce disk"
# The origin's DNS server for the -named scenarios (every name -> 127.0.0.1,
# answered after 5 ms); port 53, because Squid's dns_nameservers takes no port.
readonly DNS_ADDR=127.0.0.153
readonly ALL_PROXIES="squid nginx cachalot cachalot-nolog"

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$bench")
target_dir=${CARGO_TARGET_DIR:-$root/target}
run=$bench/run                          # configs, logs, the disk tier (real disk)
shm=/dev/shm/cachalot-repo-bench.$$     # memory-backed caches

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }

for knob in round_seconds rounds warmup tunnels c10k_conns disk_objects; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive whole number, not '${!knob}'"
done

if (($#)); then wanted_scenarios="$*"; else wanted_scenarios=${SCENARIOS:-$ALL_SCENARIOS}; fi
scenarios=()
for s in ${wanted_scenarios//,/ }; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario '$s' (choose from: $ALL_SCENARIOS)"
    scenarios+=("$s")
done
wanted_proxies=${PROXIES:-$ALL_PROXIES}
wanted_proxies=" ${wanted_proxies//,/ } "
for p in $wanted_proxies; do
    [[ " $ALL_PROXIES " == *" $p "* ]] || die "unknown proxy '$p' (choose from: $ALL_PROXIES)"
done
proxies=()
for p in $ALL_PROXIES; do
    if [[ $wanted_proxies == *" $p "* ]]; then proxies+=("$p"); fi
done
((${#proxies[@]})) || die "PROXIES selects no proxy"
want() { [[ " ${proxies[*]} " == *" $1 "* ]]; }
want_scenario() { [[ " ${scenarios[*]} " == *" $1 "* ]]; }

export PYTHONDONTWRITEBYTECODE=1    # no __pycache__ in bench/
command -v wrk >/dev/null || die "wrk is missing: apt-get install wrk"
command -v python3 >/dev/null || die "python3 is missing"

# c10k needs ~10,000 descriptors in the client and in the proxy; children
# inherit the raised soft limit
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if want_scenario c10k && (($(ulimit -n) < c10k_conns + 500)); then
    note "warning: open-file limit $(ulimit -n) is low for C10K_CONNS=$c10k_conns"
fi

# ------------------------------------------------------------ processes

declare -A pid_of=() born_at=()
started=()

# start NAME CMD...: CMD in the background, in its own session (a ^C on the
# terminal reaches only this script, whose trap stops everything in order)
start() {
    local name=$1
    shift
    setsid "$@" >"$run/$name.log" 2>&1 </dev/null &
    pid_of[$name]=$!
    born_at[$name]=$(start_time $!) || born_at[$name]=gone
    started+=("$name")
}

# the fields of /proc/PID/stat after the command name (which may hold spaces)
stat_of() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    echo "${s##*) }"
}
alive() {
    local s
    s=$(stat_of "$1") || return 1
    [[ ${s%% *} != Z ]]
}
start_time() {
    local s
    s=$(stat_of "$1") || return 1
    set -- $s
    echo "${20}"
}
descendants() {
    local table queue=("$1") p c
    table=$(ps -e -o pid=,ppid=)
    while ((${#queue[@]})); do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        for c in $(awk -v p="$p" '$2 == p { print $1 }' <<<"$table"); do
            echo "$c"
            queue+=("$c")
        done
    done
}

# SIGTERM to the process, up to 10 s to exit, then SIGKILL to whatever is
# left of its tree -- matched by PID *and* start time, so a recycled PID is
# never touched
stop_one() {
    local pid=${pid_of[$1]} p st i
    local -A born=()
    # gone already (and reaped): its PID may belong to someone else by now
    [[ $(start_time "$pid" 2>/dev/null) == "${born_at[$1]}" ]] || return 0
    for p in "$pid" $(descendants "$pid"); do
        if st=$(start_time "$p"); then born[$p]=$st; fi
    done
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    for p in "${!born[@]}"; do
        if [[ $(start_time "$p" 2>/dev/null) == "${born[$p]}" ]] && alive "$p"; then
            note "$1: SIGKILL to $p"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    wait "$pid" 2>/dev/null || true
}

# waited NAME CMD...: CMD in the background, waited for. A signal to this
# script is then acted on at once: bash runs a trap only once the foreground
# command is done, and a build or the driver takes minutes.
waited() {
    local name=$1
    shift
    "$@" </dev/null &
    pid_of[$name]=$!
    born_at[$name]=$(start_time $!) || born_at[$name]=gone
    started+=("$name")
    wait "${pid_of[$name]}"
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        stop_one "${started[i]}"
    done
    rm -rf "$shm" "$run/cachalot-disk/cache"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PORT: until it accepts connections (30 s), or fail if NAME died
wait_port() {
    local i
    for ((i = 0; i < 300; i++)); do
        port_open "$2" && return 0
        if ! alive "${pid_of[$1]}"; then
            note "$1 exited: $(tail -c 400 "$run/$1.log")"
            return 1
        fi
        sleep 0.1
    done
    note "$1: port $2 not listening after 30 s: $(tail -c 400 "$run/$1.log")"
    return 1
}

# ------------------------------------------------------------ configs

# cachalot_config NAME PORT ADMIN_PORT ACCESS_LOG CACHE_DIR [MEMORY_SIZE]
cachalot_config() {
    local memory=""
    if [[ -n ${6:-} ]]; then
        # max_object_size may not exceed memory_size
        memory=$'memory_size = "'"$6"$'"\nmax_object_size = "4MiB"'
    fi
    mkdir -p "$run/$1"
    cat >"$run/$1/config.toml" <<EOF
# written by bench/run.sh
[server]
listen = "127.0.0.1:$2"
connect_ports = [$ORIGIN_PORT]
max_connections = 20000

[timeouts]
drain = "1s"

[cache]
dir = "$5"
$memory

[log]
level = "warn"
access = "$4"

[admin]
listen = "127.0.0.1:$3"

[dns]
servers = ["$DNS_ADDR"]

# like the shipped rules, a dst rule: every request (hits included) has its
# destination checked, named ones through the resolver cache
[[acl]]
name = "bench"
action = "allow"
dst = ["127.0.0.0/8"]
EOF
}

squid_config() {
    mkdir -p "$run/squid"
    cat >"$run/squid/squid.conf" <<EOF
# written by bench/run.sh: a forward proxy with a memory cache only
http_port 127.0.0.1:$SQUID_PORT
pid_filename $run/squid/squid.pid
cache_log $run/squid/cache.log
coredump_dir $run/squid
netdb_filename none
cache_effective_user proxy
visible_hostname cachalot-bench
pinger_enable off
shutdown_lifetime 1 seconds
max_filedescriptors 20000

# no cache_dir: memory only, as large as cachalot's memory tier
cache_mem 256 MB
maximum_object_size_in_memory 4 MB
maximum_object_size 4 MB

# engine against engine: no access log for Squid
access_log none
cache_store_log none
logfile_rotate 0

acl bench_clients src 127.0.0.1/32
acl origin_port port $ORIGIN_PORT
http_access allow CONNECT bench_clients origin_port
http_access deny CONNECT
http_access allow bench_clients
http_access deny all

collapsed_forwarding on
dns_nameservers $DNS_ADDR
EOF
    # Squid starts as root and switches to cache_effective_user
    if ((EUID == 0)); then chown -R proxy:proxy "$run/squid"; fi
}

nginx_config() {
    mkdir -p "$run/nginx" "$shm/nginx"
    cat >"$run/nginx/nginx.conf" <<EOF
# written by bench/run.sh: a forward-style caching proxy. nginx accepts
# absolute-form request lines and proxies to the Host; it has no CONNECT.
daemon off;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;

events {
    worker_connections 16384;
}

http {
    access_log off;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    client_body_temp_path $shm/nginx/client-body;
    proxy_temp_path $shm/nginx/proxy-temp;
    fastcgi_temp_path $shm/nginx/fastcgi;
    uwsgi_temp_path $shm/nginx/uwsgi;
    scgi_temp_path $shm/nginx/scgi;
    # file cache on tmpfs: memory-backed, but in the page cache, not in RSS
    proxy_cache_path $shm/nginx/cache levels=1:2 keys_zone=bench:32m max_size=1g inactive=1h use_temp_path=off;

    resolver $DNS_ADDR valid=60s;

    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://\$http_host\$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 10s;
        }
    }
}
EOF
}

# ------------------------------------------------------------ build

note "building (release)"
cd "$root"
waited build cargo build --release --quiet
# separately: examples unify the dev-dependencies' features (tokio's
# test-util), which must not leak into the measured binary
waited build-origin cargo build --release --quiet --example bench_origin
cachalot_bin=$target_dir/release/cachalot
origin_bin=$target_dir/release/examples/bench_origin

rm -rf "$run"
mkdir -p "$run" "$shm"

for port in $ORIGIN_PORT $SLOW_PORT; do
    if port_open "$port"; then
        die "port $port is already in use (by a process this script did not start)"
    fi
done
# A server that fails to start (a port briefly held) gets two more tries.
for attempt in 1 2 3; do
    start origin "$origin_bin" --port "$ORIGIN_PORT" --slow-port "$SLOW_PORT" --dns "$DNS_ADDR:53"
    if wait_port origin "$ORIGIN_PORT" && wait_port origin "$SLOW_PORT"; then break; fi
    stop_one origin
    ((attempt < 3)) || die "the origin did not start (see bench/run/origin.log)"
    sleep 2
done

candidates=()
skipped=()
# launch NAME PORT ADMIN_PORT CMD...: start a proxy and wait for it; on
# success $spec is NAME:PORT:PID:ADMIN_PORT. A proxy that cannot start is
# reported, not fatal.
launch() {
    local name=$1 port=$2 admin=$3
    shift 3
    if port_open "$port"; then
        skipped+=(--skipped "$name:port $port already in use")
        return 1
    fi
    local attempt
    for attempt in 1 2 3; do
        start "$name" "$@"
        if wait_port "$name" "$port"; then
            spec=$name:$port:${pid_of[$name]}:$admin
            return 0
        fi
        stop_one "$name"
        if ((attempt < 3)); then sleep 2; fi
    done
    skipped+=(--skipped "$name:did not start (see bench/run/$name.log)")
    return 1
}

for p in "${proxies[@]}"; do
    case $p in
    squid)
        if command -v squid >/dev/null; then
            squid_config
            if launch squid "$SQUID_PORT" "" squid -N -f "$run/squid/squid.conf"; then
                candidates+=(--candidate "$spec")
            fi
        else
            skipped+=(--skipped "squid:not installed")
        fi
        ;;
    nginx)
        if command -v nginx >/dev/null; then
            nginx_config
            if launch nginx "$NGINX_PORT" "" nginx -p "$run/nginx/" -c "$run/nginx/nginx.conf" \
                -e "$run/nginx/error.log"; then
                candidates+=(--candidate "$spec")
            fi
        else
            skipped+=(--skipped "nginx:not installed")
        fi
        ;;
    cachalot)
        # admins run with the access log on: so does this candidate
        cachalot_config cachalot "$CACHALOT_PORT" "$CACHALOT_ADMIN" "$run/cachalot/access.log" "$shm/cachalot"
        if launch cachalot "$CACHALOT_PORT" "$CACHALOT_ADMIN" "$cachalot_bin" --config "$run/cachalot/config.toml"; then
            candidates+=(--candidate "$spec")
        fi
        ;;
    cachalot-nolog)
        cachalot_config cachalot-nolog "$NOLOG_PORT" "$NOLOG_ADMIN" "" "$shm/cachalot-nolog"
        if launch cachalot-nolog "$NOLOG_PORT" "$NOLOG_ADMIN" "$cachalot_bin" \
            --config "$run/cachalot-nolog/config.toml"; then
            candidates+=(--candidate "$spec")
        fi
        ;;
    esac
done

disk=()
if want_scenario disk && want cachalot; then
    # memory tier far smaller than the object set; the disk tier on real disk
    cachalot_config cachalot-disk "$DISK_PORT" "$DISK_ADMIN" "$run/cachalot-disk/access.log" "$run/cachalot-disk/cache" 8MiB
    # measured in the disk scenario only, not as a candidate of the others
    if launch cachalot-disk "$DISK_PORT" "$DISK_ADMIN" "$cachalot_bin" --config "$run/cachalot-disk/config.toml"; then
        disk=(--disk "$spec")
    fi
fi

((${#candidates[@]})) || die "no proxy is running"

note "scenarios: ${scenarios[*]}; $rounds round(s) x $round_seconds s"
scenario_list=${scenarios[*]}
waited driver python3 "$bench/driver.py" "${candidates[@]}" "${skipped[@]}" "${disk[@]}" \
    --scenarios "${scenario_list// /,}" --origin-port "$ORIGIN_PORT" --slow-port "$SLOW_PORT" \
    --rounds "$rounds" --seconds "$round_seconds" --warmup "$warmup" --tunnels "$tunnels" \
    --c10k-conns "$c10k_conns" --disk-objects "$disk_objects" --cachalot-bin "$cachalot_bin" \
    --results "$bench/results"
