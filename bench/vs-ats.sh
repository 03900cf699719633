#!/usr/bin/env bash
# cachalot in the shared side-by-side harness (../shared/bench, or $HARNESS)
# beside Squid, Apache Traffic Server and nginx, all interleaved in one run:
# builds the release binary, writes its config (access log on, on tmpfs)
# and runs the harness with the scenarios given (default: the rows of the
# performance table: hit1k hit1m miss1k tunnel c10k coalesce).
#
#   bench/vs-ats.sh                       # ROUNDS=5, squid,ats,nginx,cachalot
#   PINNED=1 bench/vs-ats.sh hit1k miss1k # proxies on core 1, load and origin on core 0
#   DISK=1 bench/vs-ats.sh hit1m          # adds ats-disk and cachalot-disk: caches on
#                                         # this folder's file system, 1 MiB hits from disk
#
# Knobs: ROUNDS (5), PROXIES, HARNESS, and the harness's own (see its README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness=$(cd "${HARNESS:-$root/../shared/bench}" && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release --quiet)
bin=$target_dir/release/cachalot
work=$(mktemp -d /tmp/cachalot-vs-ats.XXXXXX)
trap 'rm -rf "$work" /dev/shm/cachalot-vs-ats-access.log "$root/bench/run/disk-tier"' EXIT

config() { # $1: file, $2: extra [cache] lines, $3: access log path ("" = off)
    cat >"$1" <<EOF
[server]
connect_ports = [443, 18080]
max_connections = 20000
[cache]
$2
[log]
access = "$3"
level = "warn"
[[acl]]
name = "bench"
action = "allow"
src = ["127.0.0.0/8"]
EOF
}
config "$work/cachalot.toml" "" /dev/shm/cachalot-vs-ats-access.log

pin=""
extra_file=""
if [ "${PINNED:-0}" = 1 ]; then
    pin="taskset -c 1 "
    # ATS binds its threads to the NUMA node's cores unless told not to,
    # which would undo taskset.
    cp -r "$harness/conf/ats" "$work/ats-pinned"
    echo "CONFIG proxy.config.exec_thread.affinity INT 0" >>"$work/ats-pinned/etc/records.config"
    chmod -R a+rX "$work"
    ats_conf=$(realpath --relative-to="$harness" "$work/ats-pinned")
    cat >"$work/pinned.ini" <<EOF
[squid]
cmd = taskset -c 1 squid -N -f @RUN@/squid.conf

[ats]
conf = $ats_conf
cmd = env TS_RUNROOT=@RUN@/runroot.yaml taskset -c 1 traffic_server

[nginx]
cmd = taskset -c 1 nginx -p @RUN@ -c @RUN@/nginx.conf -e @RUN@/error.log
EOF
    extra_file=$work/pinned.ini
fi

extra="name=cachalot;port=28200;pre=rm -f /dev/shm/cachalot-vs-ats-access.log;cmd=${pin}$bin --config $work/cachalot.toml --listen 127.0.0.1:@PORT@ --cache-dir @CACHE@/cache"
proxies=${PROXIES:-squid,ats,nginx,cachalot}
if [ "${DISK:-0}" = 1 ]; then
    # Both caches on this folder's file system (not tmpfs), RAM caching of
    # 1 MiB bodies off: ATS with no RAM cache, cachalot with bodies over
    # 512 KiB on disk only (streamed from their files).
    disk=$root/bench/run/disk-tier
    rm -rf "$disk" && mkdir -p "$disk/ats" "$disk/cachalot"
    cp -r "$harness/conf/ats" "$work/ats-disk"
    echo "$disk/ats/ats-span.db 2G" >"$work/ats-disk/etc/storage.config"
    sed -i -e 's/^CONFIG proxy.config.cache.ram_cache.size INT .*/CONFIG proxy.config.cache.ram_cache.size INT 0/' \
        -e 's/^CONFIG proxy.config.cache.ram_cache_cutoff INT .*/CONFIG proxy.config.cache.ram_cache_cutoff INT 0/' \
        "$work/ats-disk/etc/records.config"
    chmod -R a+rX "$work"
    config "$work/disk.toml" 'memory_object_size = "512KiB"' ""
    conf_rel=$(realpath --relative-to="$harness" "$work/ats-disk")
    extra+=$'\n'"name=ats-disk;port=28210;conf=$conf_rel;pre=mkdir -p @RUN@/run @RUN@/log @RUN@/data && rm -f $disk/ats/ats-span.db && truncate -s 2G $disk/ats/ats-span.db && chown -R trafficserver @RUN@ @CACHE@ $disk/ats;cmd=env TS_RUNROOT=@RUN@/runroot.yaml ${pin}traffic_server"
    extra+=$'\n'"name=cachalot-disk;port=28211;pre=rm -rf $disk/cachalot/cache;cmd=${pin}$bin --config $work/disk.toml --listen 127.0.0.1:@PORT@ --cache-dir $disk/cachalot/cache"
    proxies=${PROXIES:-ats,ats-disk,cachalot,cachalot-disk}
fi

cd "$harness"
run=(env ROUNDS="${ROUNDS:-5}" PROXIES="$proxies" EXTRA_PROXY="$extra")
[ -n "$extra_file" ] && run+=(PROXIES_FILE="$extra_file")
if [ "${PINNED:-0}" = 1 ]; then
    # The harness, wrk, the clients and the origin on core 0.
    run=(taskset -c 0 "${run[@]}")
fi
if [ "$#" -eq 0 ]; then
    set -- hit1k hit1m miss1k tunnel c10k coalesce
fi
"${run[@]}" ./run.sh "$@"
