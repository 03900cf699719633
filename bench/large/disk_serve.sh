#!/usr/bin/env bash
# Disk-tier serving of one big object vs nginx serving the same file.
#  1. SIZE-byte object stored by one download through the proxy;
#  2. proxy restarted (memory tier empty: hits come from the disk tier);
#  3. N sequential downloads through the proxy (curl to /dev/null) vs N
#     sequential downloads straight from nginx (sendfile, same file system);
#  4. time to first byte (curl %{time_starttransfer}) of disk hits: median of
#     TTFB_N requests of the big object and of a 64 KiB object, plus nginx's.
# Page cache is warm throughout (the origin file and the cache file both fit
# in RAM; no drop_caches): these are warm-cache figures.
#
# Usage: bench/large/disk_serve.sh   (env: SIZE=4294967296 N=5 TTFB_N=10)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/var/tmp/cachalot-large-disk.$$}
BASEPORT=${BASEPORT:-23810}
. "$HERE/lib.sh"

SIZE=${SIZE:-4294967296}
N=${N:-5}
TTFB_N=${TTFB_N:-10}
DISK_SIZE=${DISK_SIZE:-8GiB}
MAX_OBJ=${MAX_OBJ:-4GiB}

mkdir -p "$WORK/root"
log "creating $SIZE-byte origin file"
make_file "$WORK/root/big.bin" "$SIZE"
head -c 65536 /dev/urandom >"$WORK/root/small.bin"
start_nginx "$WORK/root" || exit 1

median() { sort -n | awk '{a[NR]=$1} END{if(NR%2) print a[(NR+1)/2]; else printf "%.6f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# fetch VIA URL -> "size code time_total time_starttransfer speed_download"
fetch() {
    local via=$1 url=$2
    if [ "$via" = proxy ]; then
        curl -s -x "$PROXY" -o /dev/null -w '%{size_download} %{http_code} %{time_total} %{time_starttransfer} %{speed_download}\n' "$url"
    else
        curl -s -o /dev/null -w '%{size_download} %{http_code} %{time_total} %{time_starttransfer} %{speed_download}\n' "$url"
    fi
}

conf="$WORK/proxy.toml"
write_proxy_config "$conf" "$WORK/cache" "disk_size = \"$DISK_SIZE\"
max_object_size = \"$MAX_OBJ\""

echo "== store: one download through the proxy"
start_proxy "$conf" || exit 1
fetch proxy "$ORIGIN/big.bin" | awk '{printf "miss: %s bytes, code %s, %.2f s, %.0f MiB/s\n", $1, $2, $3, $5/1048576}'
fetch proxy "$ORIGIN/small.bin" | awk '{printf "miss (64 KiB): %s bytes, code %s\n", $1, $2}'
sleep 1
echo "stop: $(stop_proxy) s after SIGTERM"
echo "cachalot cache stats:"; "$CACHALOT" cache --config "$conf" stats 2>&1 | sed "s/^/    /"
ls -la "$WORK/cache" "$WORK/cache/objects" 2>/dev/null | head -20
: >"$WORK/proxy-access.log"

echo "== restart; $N sequential disk hits vs nginx direct"
start_proxy "$conf" || exit 1
: >"$WORK/p.txt"; : >"$WORK/n.txt"
start_sampler "$PROXY_PID" "$WORK/rss.txt"
# interleaved, so both see the same background
echo "size code time_total ttfb speed (proxy, then nginx direct)"
for i in $(seq "$N"); do
    fetch proxy "$ORIGIN/big.bin" | tee -a "$WORK/p.txt"
    fetch direct "$ORIGIN/big.bin" | tee -a "$WORK/n.txt"
done
stop_sampler
echo "proxy RSS during the disk hits: $(rss_summary "$WORK/rss.txt")"
metric '^cachalot_cache_bytes'
echo "TTFB of the first disk hit after the restart: $(head -1 "$WORK/p.txt" | awk '{printf "%.2f", $4*1000}') ms"
pbad=$(awk -v s="$SIZE" '!($1==s && $2==200)' "$WORK/p.txt" | wc -l)
p=$(awk '{print $5}' "$WORK/p.txt" | median)
n=$(awk '{print $5}' "$WORK/n.txt" | median)
python3 - "$p" "$n" "$pbad" <<'EOF'
import sys
p, n, bad = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print(f"median throughput: proxy disk hit {p/1048576:.0f} MiB/s, nginx direct {n/1048576:.0f} MiB/s, ratio {p/n:.2f} (bad downloads: {bad})")
EOF
sleep 0.5
echo "access log codes so far:"; access_codes

echo "== TTFB: median of $TTFB_N (warm cache)"
for what in big.bin small.bin; do
    : >"$WORK/t.txt"; : >"$WORK/tn.txt"
    for i in $(seq "$TTFB_N"); do fetch proxy "$ORIGIN/$what" >>"$WORK/t.txt"; done
    for i in $(seq "$TTFB_N"); do fetch direct "$ORIGIN/$what" >>"$WORK/tn.txt"; done
    tp=$(awk '{print $4}' "$WORK/t.txt" | median)
    tn=$(awk '{print $4}' "$WORK/tn.txt" | median)
    mx=$(awk '{print $4}' "$WORK/t.txt" | sort -n | tail -1)
    bad=$(awk '!($2==200)' "$WORK/t.txt" | wc -l)
    first=$(head -1 "$WORK/t.txt" | awk '{printf "%.2f", $4*1000}')
    echo "$what: proxy TTFB of the first request $first ms; median $(python3 -c "print(f'{$tp*1000:.2f}')") ms (max $(python3 -c "print(f'{$mx*1000:.2f}')") ms), nginx direct $(python3 -c "print(f'{$tn*1000:.2f}')") ms; non-200: $bad"
done
sleep 0.5
echo "access log codes (all hits since restart):"; access_codes
echo "per-URL codes:"; awk '{print $7, $4}' "$WORK/proxy-access.log" | sort | uniq -c

if [ "${DISK_ONLY_SMALL:-1}" = 1 ]; then
    # With the default memory_object_size (4 MiB) the 64 KiB object is also
    # kept in the memory tier once read; to time disk hits of a small object,
    # a proxy with a tiny memory tier threshold.
    echo "== TTFB of the 64 KiB object with memory_object_size = 1KiB (disk tier only)"
    stop_proxy >/dev/null
    conf2="$WORK/proxy2.toml"
    write_proxy_config "$conf2" "$WORK/cache2" "disk_size = \"1GiB\"
max_object_size = \"1GiB\"
memory_object_size = \"1KiB\""
    : >"$WORK/proxy-access.log"
    start_proxy "$conf2" || exit 1
    fetch proxy "$ORIGIN/small.bin" >/dev/null
    sleep 0.5
    stop_proxy >/dev/null
    start_proxy "$conf2" || exit 1
    : >"$WORK/t.txt"
    for i in $(seq "$TTFB_N"); do fetch proxy "$ORIGIN/small.bin" >>"$WORK/t.txt"; done
    tp=$(awk '{print $4}' "$WORK/t.txt" | median)
    mx=$(awk '{print $4}' "$WORK/t.txt" | sort -n | tail -1)
    first=$(head -1 "$WORK/t.txt" | awk '{printf "%.2f", $4*1000}')
    echo "small.bin (disk only): proxy TTFB of the first request after restart $first ms; median $(python3 -c "print(f'{$tp*1000:.2f}')") ms (max $(python3 -c "print(f'{$mx*1000:.2f}')") ms)"
    sleep 0.5
    echo "codes:"; access_codes
fi
echo "stop: $(stop_proxy) s after SIGTERM"
echo "== proxy log (warnings and errors)"
grep -vE ' INFO ' "$WORK/proxy.log" | head -40 || true
