#!/usr/bin/env bash
# Space amplification of the disk tier: disk_size DISK_SIZE, TOTAL bytes of
# distinct objects of log-uniform random sizes MIN..MAX (fixed SEED) pushed
# through it by PAR clients, then `du` of the cache folder (sled db + objects/)
# compared with disk_size; du is also sampled every 0.5 s during the run (peak
# reported) and measured again after a clean stop.
#
# Origin files are sparse (truncate -s): content does not matter here, and
# nginx reads holes as zeros; the cache writes real blocks.
#
# Usage: bench/large/space.sh  (env: DISK_SIZE=1GiB TOTAL=5368709120
#                                   MIN=65536 MAX=67108864 SEED=42 PAR=4)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/var/tmp/cachalot-large-space.$$}
BASEPORT=${BASEPORT:-23820}
. "$HERE/lib.sh"

DISK_SIZE=${DISK_SIZE:-1GiB}
TOTAL=${TOTAL:-5368709120}
MIN=${MIN:-65536}
MAX=${MAX:-67108864}
SEED=${SEED:-42}
PAR=${PAR:-4}

mkdir -p "$WORK/root/o"
head -c 65536 /dev/urandom >"$WORK/root/small.bin"
python3 - "$WORK/root/o" "$TOTAL" "$MIN" "$MAX" "$SEED" >"$WORK/sizes.txt" <<'EOF'
import math, os, random, sys
d, total, lo, hi, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
n = 0; i = 0
while n < total:
    s = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    with open(os.path.join(d, str(i)), "wb") as f:
        f.truncate(s)
    print(i, s)
    n += s; i += 1
EOF
nobj=$(wc -l <"$WORK/sizes.txt")
sum=$(awk '{s+=$2} END{print s}' "$WORK/sizes.txt")
echo "objects: $nobj, total $sum bytes ($(python3 -c "print(f'{$sum/2**30:.2f}')") GiB), sizes $(awk 'NR==1{mn=$2;mx=$2} {if($2<mn)mn=$2; if($2>mx)mx=$2} END{print mn"-"mx}' "$WORK/sizes.txt")"
start_nginx "$WORK/root" || exit 1

conf="$WORK/proxy.toml"
# max_object_size must fit in disk_size; the default (4GiB) does not fit 1GiB
write_proxy_config "$conf" "$WORK/cache" "disk_size = \"$DISK_SIZE\"
max_object_size = $MAX"
disk_bytes=$(python3 -c "
s='$DISK_SIZE'
u={'KiB':2**10,'MiB':2**20,'GiB':2**30}
print(next((int(float(s[:-3])*v) for k,v in u.items() if s.endswith(k)), None) or int(s))")
start_proxy "$conf" || exit 1

# du sampler
(
    while true; do
        echo "$(du -sb "$WORK/cache" 2>/dev/null | cut -f1) $(du -s --block-size=1 "$WORK/cache" 2>/dev/null | cut -f1)"
        sleep 0.5
    done
) >"$WORK/du.txt" &
DU_PID=$!
_PIDS+=("$DU_PID")

t0=$(now)
awk -v o="$ORIGIN" '{print o "/o/" $1}' "$WORK/sizes.txt" |
    xargs -P "$PAR" -n 1 curl -s -x "$PROXY" -o /dev/null -w '%{size_download} %{http_code}\n' >"$WORK/results.txt"
t1=$(now)
kill "$DU_PID" 2>/dev/null
echo "pushed in $(elapsed "$t0" "$t1") s ($(mibps "$sum" "$t0" "$t1") MiB/s)"
got=$(awk '{s+=$1} END{print s}' "$WORK/results.txt")
echo "responses: $(awk '$2==200' "$WORK/results.txt" | wc -l)/$nobj 200, bytes received $got of $sum"
sleep 2

report() { # report LABEL
    local a b oa ob da db
    a=$(du -sb "$WORK/cache" | cut -f1)
    b=$(du -s --block-size=1 "$WORK/cache" | cut -f1)
    oa=$(du -sb "$WORK/cache/objects" 2>/dev/null | cut -f1)
    ob=$(du -s --block-size=1 "$WORK/cache/objects" 2>/dev/null | cut -f1)
    python3 - "$1" "$a" "$b" "${oa:-0}" "${ob:-0}" "$disk_bytes" <<'EOF'
import sys
label, a, b, oa, ob, d = sys.argv[1], *map(int, sys.argv[2:])
M = 2**20
print(f"{label}: du -sb {a} ({a/M:.1f} MiB, {a/d:.3f}x disk_size); du --block-size=1 {b} ({b/M:.1f} MiB, {b/d:.3f}x)")
print(f"   objects/: apparent {oa/M:.1f} MiB, allocated {ob/M:.1f} MiB; rest (sled db etc.): apparent {(a-oa)/M:.1f} MiB, allocated {(b-ob)/M:.1f} MiB")
EOF
}
report "running, after the push"
awk '{if($1>a)a=$1; if($2>b)b=$2} END{printf "peak during the push (0.5 s samples): du -sb %.1f MiB, allocated %.1f MiB\n", a/1048576, b/1048576}' "$WORK/du.txt"
metric '^cachalot_cache_(bytes|entries|evictions_total|capacity_bytes)\{tier="disk"\}|^cachalot_cache_disk_write'
echo "object files: $(find "$WORK/cache/objects" -type f | wc -l)"
echo "stop: $(stop_proxy) s after SIGTERM"
report "stopped"
echo "cachalot cache stats:"; "$CACHALOT" cache --config "$conf" stats 2>&1 | sed "s/^/    /"
echo "cache dir listing:"; ls -la "$WORK/cache"; du -sb "$WORK/cache"/* | sort -n | tail
echo "access log codes:"; access_codes
echo "== proxy log (warnings and errors)"
grep -vE ' INFO ' "$WORK/proxy.log" | head -40 || true
