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
# The push is repeated with new URLs (a round every ~2 s) until MIN_SECS
# have passed, so disk writes, paused for 30 s after a failure, are retried
# on the full file system while the loops go on.
#
# Usage: sudo bench/large/diskfull.sh   (env: FS_SIZE=30m PUSH_MIB=200
#                OBJ_SIZE=2097152 BIG_SIZE=8388608 MIN_SECS=40 MAX_ROUNDS=20)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/var/tmp/cachalot-large-full.$$}
BASEPORT=${BASEPORT:-23830}
MNT=${MNT:-/mnt/cachalot-full.$$}
FS_SIZE=${FS_SIZE:-30m}
PUSH_MIB=${PUSH_MIB:-200}
OBJ_SIZE=${OBJ_SIZE:-2097152}
BIG_SIZE=${BIG_SIZE:-8388608}
MIN_SECS=${MIN_SECS:-40}
MAX_ROUNDS=${MAX_ROUNDS:-20}
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
start_nginx "$WORK/root" "location ~ ^/big/(\\d+)\$ { alias $WORK/root/big8.bin; }" || exit 1

conf="$WORK/proxy.toml"
write_proxy_config "$conf" "$MNT/cache" 'disk_size = "4GiB"
max_object_size = "1GiB"'
start_proxy "$conf" || exit 1

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
# rounds of distinct URLs until MIN_SECS have passed (so the 30 s pause of
# disk writes after a failure runs out and writes are retried on the full
# file system), at most MAX_ROUNDS
round=0
: >"$WORK/push.txt"
while [ "$round" -lt "$MAX_ROUNDS" ]; do
    {
        for i in $(seq 1 "$n_small"); do echo "$ORIGIN/obj/$((round * 100000 + i))"; done
        for i in $(seq 1 "$n_big"); do echo "$ORIGIN/big/$((round * 100000 + i))"; done
    } | xargs -P 2 -n 1 curl -s -m 60 -x "$PROXY" -o /dev/null -w '%{http_code} %{size_download} %{url_effective}\n' >>"$WORK/push.txt"
    round=$((round + 1))
    echo "round $round done at +$(elapsed "$t0" "$(now)") s; disk write errors so far: $(metric '^cachalot_cache_disk_write_errors_total' | awk '{print $2}')"
    [ "$(python3 -c "print(int($(now) - $t0 >= $MIN_SECS))")" = 1 ] && break
    sleep 2
done
t1=$(now)
sleep 1
touch "$STOP"
wait "$L1" "$L2" "$L3"
echo "push: $round rounds of $n_small x $OBJ_SIZE + $n_big x $BIG_SIZE bytes in $(elapsed "$t0" "$t1") s"
awk -v s="$OBJ_SIZE" -v b="$BIG_SIZE" '
    { n++; want = ($3 ~ /\/big\//) ? b : s; if ($1 == 200 && $2 == want) ok++; else { bad++; print "  bad push:", $0 } }
    END { printf "push responses ok %d/%d\n", ok, n }' "$WORK/push.txt" | tail -6
summ() { # summ NAME EXPECTED_SIZE(or 0 for any)
    local f="$WORK/loop-$1.txt" med mx
    med=$(awk '{print $3}' "$f" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]+0}')
    mx=$(awk '{print $3}' "$f" | sort -n | tail -1)
    awk -v name="$1" -v want="$2" -v med="$med" -v mx="$mx" '
        { n++; if ($1 == 200 && (want == 0 || $2 == want)) ok++; else { bad++; if (bad <= 5) ex = ex "\n    " $0 } }
        END { printf "%-12s requests %d, failures %d, median %.1f ms, max %.1f ms%s\n", name, n, bad+0, med*1000, mx*1000, ex }' "$f"
}
summ memhit 65536
summ pass 65536
summ metrics 0
df -B1 "$MNT" | tail -1 | awk '{printf "tmpfs: used %d of %d bytes\n", $3, $2}'
metric '^cachalot_cache_(bytes|entries)\{tier="disk"\}|^cachalot_cache_disk_write|^cachalot_not_stored_total'
echo "access log codes:"; access_codes
t=$(stop_proxy)
echo "SIGTERM to exit: $t s"
echo "cachalot cache stats:"; "$CACHALOT" cache --config "$conf" stats 2>&1 | sed "s/^/    /"
echo "object files: $(find "$MNT/cache/objects" -type f | wc -l), $(du -sb "$MNT/cache/objects" | cut -f1) bytes; sled db etc.: $(( $(du -sb "$MNT/cache" | cut -f1) - $(du -sb "$MNT/cache/objects" | cut -f1) )) bytes"

echo "== restart on the full folder"
start_proxy "$conf" && {
    curl -s -x "$PROXY" -o /dev/null -w 'after restart: small.bin %{http_code} %{size_download}\n' "$ORIGIN/small.bin"
    curl -s -x "$PROXY" -o /dev/null -w 'after restart: /obj/1 %{http_code} %{size_download}\n' "$ORIGIN/obj/1"
    curl -s -x "$PROXY" -o /dev/null -w 'after restart: new /obj/999999 %{http_code} %{size_download}\n' "$ORIGIN/obj/999999"
    echo "SIGTERM to exit: $(stop_proxy) s"
}
echo "== proxy log (warnings and errors)"
grep -vE ' INFO ' "$WORK/proxy.log" | head -40 || true
