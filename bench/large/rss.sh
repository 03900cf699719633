#!/usr/bin/env bash
# RSS of the proxy under large downloads.
#  (a) NCLIENTS clients download NCLIENTS distinct SIZE-byte cacheable objects
#      at once (each a miss, each filling its own disk file);
#  (b) SHARED clients download one SIZE-byte object at once (one origin
#      fetch, the rest joining it).
# VmRSS/VmHWM of the proxy sampled every 0.5 s; wall time, throughput, every
# download's size and status checked, sha256 of HASHES downloads compared
# with the origin file's.
#
# Usage: bench/large/rss.sh            (defaults below; env overrides)
#   SIZE=2147483648 NCLIENTS=20 SHARED=200 HASHES=3 DISK_SIZE=20GiB
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/var/tmp/cachalot-large-rss.$$}
. "$HERE/lib.sh"

SIZE=${SIZE:-2147483648}
NCLIENTS=${NCLIENTS:-20}
SHARED=${SHARED:-200}
HASHES=${HASHES:-3}
DISK_SIZE=${DISK_SIZE:-20GiB}
PARTS=${PARTS:-ab}

log "free space:"; df -h "$WORK" >&2
mkdir -p "$WORK/root"
log "creating $SIZE-byte origin file"
make_file "$WORK/root/big.bin" "$SIZE"
head -c 65536 /dev/urandom >"$WORK/root/small.bin"
WANT_SHA=$(sha256sum "$WORK/root/big.bin" | cut -d' ' -f1)
log "origin sha256 $WANT_SHA"
start_nginx "$WORK/root" || exit 1

# client I: GET URL, print "size code sha" (sha "-" when not hashed)
client() {
    local url=$1 hash=$2 out
    if [ "$hash" = 1 ]; then
        # size and code from curl's -w on stderr-side file; body to sha256sum
        local wfile
        wfile=$(mktemp -p "$WORK")
        local sha
        sha=$(curl -s -x "$PROXY" -w '%{size_download} %{http_code}' -o >(sha256sum | cut -d' ' -f1 >"$wfile.sha") "$url" 2>/dev/null)
        # wait for the process substitution to flush
        local i; for i in $(seq 100); do [ -s "$wfile.sha" ] && break; sleep 0.1; done
        echo "$sha $(cat "$wfile.sha")"
        rm -f "$wfile" "$wfile.sha"
    else
        out=$(curl -s -x "$PROXY" -o /dev/null -w '%{size_download} %{http_code}' "$url")
        echo "$out -"
    fi
}

# run_clients NAME N URLFN: N clients at once, results in $WORK/NAME.results
run_clients() {
    local name=$1 n=$2 urlfn=$3 i
    local res="$WORK/$name.results"
    : >"$res"
    local pids=()
    for i in $(seq 1 "$n"); do
        local h=0
        [ "$i" -le "$HASHES" ] && h=1
        (client "$($urlfn "$i")" "$h" >"$res.$i") &
        pids+=("$!")
    done
    wait "${pids[@]}"
    for i in $(seq 1 "$n"); do cat "$res.$i" >>"$res"; rm -f "$res.$i"; done
}

check_results() { # check_results FILE N
    local f=$1 n=$2
    local ok bad hashed hashok
    ok=$(awk -v s="$SIZE" '$1==s && $2==200' "$f" | wc -l)
    bad=$((n - ok))
    hashed=$(awk '$3!="-"' "$f" | wc -l)
    hashok=$(awk -v h="$WANT_SHA" '$3==h' "$f" | wc -l)
    echo "downloads complete and 200: $ok/$n (bad: $bad); sha256 matches: $hashok/$hashed"
    if [ "$bad" -gt 0 ]; then
        echo "bad results:"; awk -v s="$SIZE" '!($1==s && $2==200)' "$f" | sort | uniq -c | head
    fi
}

conf="$WORK/proxy.toml"
write_proxy_config "$conf" "$WORK/cache" "disk_size = \"$DISK_SIZE\""

url_distinct() { echo "$ORIGIN/obj/$1"; }
url_shared() { echo "$ORIGIN/obj/100000"; }

if [[ $PARTS == *a* ]]; then
    echo "== (a) $NCLIENTS clients, $NCLIENTS distinct objects of $SIZE bytes, disk_size $DISK_SIZE"
    start_proxy "$conf" || exit 1
    log "proxy pid $PROXY_PID, RSS at start: $(grep VmRSS /proc/$PROXY_PID/status)"
    start_sampler "$PROXY_PID" "$WORK/rss-a.txt"
    t0=$(now)
    run_clients a "$NCLIENTS" url_distinct
    t1=$(now)
    sleep 1
    stop_sampler
    total=$((SIZE * NCLIENTS))
    echo "wall $(elapsed "$t0" "$t1") s, $(mibps "$total" "$t0" "$t1") MiB/s aggregate"
    check_results "$WORK/a.results" "$NCLIENTS"
    echo "RSS: $(rss_summary "$WORK/rss-a.txt")"
    echo "origin requests for /obj/: $(origin_requests '/obj/[0-9]+ ')"
    metric '^cachalot_cache_(bytes|entries|evictions_total|capacity_bytes)\{tier="disk"\}|disk_write|not_stored_total'
    echo "du -sb cache: $(du -sb "$WORK/cache" | cut -f1)"
    echo "stop: $(stop_proxy) s after SIGTERM"
    echo "access log codes:"; access_codes
    echo "cachalot cache stats:"; "$CACHALOT" cache --config "$conf" stats 2>&1 | sed "s/^/    /"
fi

if [[ $PARTS == *b* ]]; then
    echo "== (b) $SHARED clients share one object of $SIZE bytes"
    rm -rf "$WORK/cache"
    : >"$WORK/proxy-access.log"
    start_proxy "$conf" || exit 1
    before=$(origin_requests '/obj/100000 ')
    start_sampler "$PROXY_PID" "$WORK/rss-b.txt"
    t0=$(now)
    run_clients b "$SHARED" url_shared
    t1=$(now)
    sleep 1
    stop_sampler
    total=$((SIZE * SHARED))
    echo "wall $(elapsed "$t0" "$t1") s, $(mibps "$total" "$t0" "$t1") MiB/s aggregate delivered to clients"
    check_results "$WORK/b.results" "$SHARED"
    echo "RSS: $(rss_summary "$WORK/rss-b.txt")"
    echo "origin requests for /obj/100000: $(( $(origin_requests '/obj/100000 ') - before ))"
    metric '^cachalot_cache_(bytes|entries)\{tier="disk"\}|^cachalot_requests_total|not_stored_total'
    echo "stop: $(stop_proxy) s after SIGTERM"
    echo "access log codes:"; access_codes
fi

echo "== proxy log (warnings and errors)"
grep -vE ' INFO ' "$WORK/proxy.log" | head -40 || true
