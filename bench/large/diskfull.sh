#!/usr/bin/env bash
# Behaviour on a full disk (needs root: mounts a tmpfs).
# The cache folder is on a FS_SIZE tmpfs while disk_size is much larger, so
# the file system fills before the cache's own bound. PUSH_MIB MiB of
# distinct cacheable objects (OBJ_SIZE each, then as many again of
# BIG_SIZE, which are too big for the memory tier and stream from their file)
# are pushed through, while in parallel three loops run:
#   memory hits  - one 64 KiB object fetched once first, then repeatedly
#   pass-through - an uncacheable URL (Cache-Control: no-store)
#   metrics      - /metrics scrapes on the admin listener
# Failures of each kind are counted (a failure: not a 200 or a short body).
# Then SIGTERM, timing how long the process takes to exit, and a restart on
# the full folder (must come up and serve).
#
# Usage: sudo bench/large/diskfull.sh   (env: FS_SIZE=30m PUSH_MIB=200
#                                        OBJ_SIZE=2097152 BIG_SIZE=8388608)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/var/tmp/cachalot-large-full.$$}
BASEPORT=${BASEPORT:-38030}
MNT=${MNT:-/mnt/cachalot-full.$$}
FS_SIZE=${FS_SIZE:-30m}
PUSH_MIB=${PUSH_MIB:-200}
OBJ_SIZE=${OBJ_SIZE:-2097152}
BIG_SIZE=${BIG_SIZE:-8388608}
. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root (mount -t tmpfs)"; exit 1; }
mkdir -p "$MNT"
mount -t tmpfs -o size="$FS_SIZE" tmpfs "$MNT" || exit 1
EXTRA_CLEANUP="umount '$MNT' 2>/dev/null; rmdir '$MNT' 2>/dev/null"
df -h "$MNT"

mkdir -p "$WORK/root"
make_file "$WORK/root/big.bin" "$OBJ_SIZE"
make_file "$WORK/root/big8.bin" "$BIG_SIZE"
head -c 65536 /dev/urandom >"$WORK/root/small.bin"
start_nginx "$WORK/root" "location ~ ^/big/(\\d+)\$ { alias $WORK/root/big8.bin; }"

conf="$WORK/proxy.toml"
write_proxy_config "$conf" "$MNT/cache" 'disk_size = "4GiB"
max_object_size = "1GiB"'
start_proxy "$conf"

# prime the memory hit
curl -s -x "$PROXY" -o /dev/null "$ORIGIN/small.bin"
curl -s -x "$PROXY" -o /dev/null -D - "$ORIGIN/small.bin" | grep -i cache-status

STOP="$WORK/stop"
MAXIT=${MAXIT:-200000}
# loop NAME CURL_ARGS...: one line per request "code size time"
loop() {
    local name=$1; shift
    local i=0
    while [ ! -e "$STOP" ] && [ "$i" -lt "$MAXIT" ]; do
        curl -s -m 10 -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' "$@" || echo "000 0 curl-exit-$?"
        i=$((i + 1))
    done >"$WORK/loop-$name.txt"
}
loop memhit -x "$PROXY" "$ORIGIN/small.bin" &
L1=$!
loop pass -x "$PROXY" "$ORIGIN/nostore/x" &
L2=$!
loop metrics "$ADMIN/metrics" &
L3=$!
_PIDS+=("$L1" "$L2" "$L3")

n_small=$((PUSH_MIB * 1048576 / OBJ_SIZE))
n_big=$((PUSH_MIB * 1048576 / BIG_SIZE))
t0=$(now)
{
    for i in $(seq 1 "$n_small"); do echo "$ORIGIN/obj/$i"; done
    for i in $(seq 1 "$n_big"); do echo "$ORIGIN/big/$i"; done
} | xargs -P 2 -n 1 curl -s -m 60 -x "$PROXY" -o /dev/null -w '%{http_code} %{size_download} %{url_effective}\n' >"$WORK/push.txt"
t1=$(now)
sleep 1
touch "$STOP"
wait "$L1" "$L2" "$L3"
echo "push of $n_small x $OBJ_SIZE + $n_big x $BIG_SIZE bytes: $(elapsed "$t0" "$t1") s"
awk -v s="$OBJ_SIZE" -v b="$BIG_SIZE" '
    { n++; want = ($3 ~ /\/big\//) ? b : s; if ($1 == 200 && $2 == want) ok++; else { bad++; print "  bad push:", $0 } }
    END { printf "push responses ok %d/%d\n", ok, n }' "$WORK/push.txt" | tail -6
summ() { # summ NAME EXPECTED_SIZE(or 0 for any)
    awk -v name="$1" -v want="$2" '
        { n++; if ($1 == 200 && (want == 0 || $2 == want)) ok++; else { bad++; if (bad <= 5) ex = ex "\n    " $0 }
          t[n] = $3 }
        END { asort(t); printf "%-12s requests %d, failures %d, median %.1f ms, max %.1f ms%s\n", name, n, bad, t[int((n+1)/2)]*1000, t[n]*1000, ex }' "$WORK/loop-$1.txt"
}
summ memhit 65536
summ pass 65536
summ metrics 0
df -B1 "$MNT" | tail -1 | awk '{printf "tmpfs: used %d of %d bytes\n", $3, $2}'
metric '^cachalot_cache_(bytes|entries)\{tier="disk"\}|^cachalot_cache_disk_write|^cachalot_not_stored_total'
echo "access log codes:"; access_codes
t=$(stop_proxy)
echo "SIGTERM to exit: $t s"

echo "== restart on the full folder"
start_proxy "$conf" && {
    curl -s -x "$PROXY" -o /dev/null -w 'after restart: small.bin %{http_code} %{size_download}\n' "$ORIGIN/small.bin"
    curl -s -x "$PROXY" -o /dev/null -w 'after restart: /obj/1 %{http_code} %{size_download}\n' "$ORIGIN/obj/1"
    curl -s -x "$PROXY" -o /dev/null -w 'after restart: new /obj/999999 %{http_code} %{size_download}\n' "$ORIGIN/obj/999999"
    echo "SIGTERM to exit: $(stop_proxy) s"
}
echo "== proxy log (warnings and errors)"
grep -vE ' INFO ' "$WORK/proxy.log" | head -40 || true
