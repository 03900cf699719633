#!/bin/sh
# Writes N (default 2,000,000) realistic Squid-native access-log lines to
# FILE (default: stdout), for timing `cachalot stats`. See README.md here.
#   bench/stats/gen_log.sh [N] [FILE]
# POPULAR=K (default 0) sends 80 % of the non-tunnel requests to K URLs of
# skewed popularity, each with a fixed size, so that `stats --simulate` has
# something to find; with 0 nearly every URL is new.
set -eu
n=${1:-2000000}
out=${2:-/dev/stdout}
awk -v n="$n" -v popular="${POPULAR:-0}" 'BEGIN {
    srand(42)
    split("TCP_MISS TCP_MISS TCP_MISS TCP_MISS TCP_MISS TCP_MISS TCP_MISS TCP_MISS TCP_MISS " \
          "TCP_MEM_HIT TCP_MEM_HIT TCP_MEM_HIT TCP_MEM_HIT TCP_HIT TCP_HIT TCP_HIT " \
          "TCP_REFRESH_UNMODIFIED TCP_REFRESH_MODIFIED TCP_IMS_HIT TCP_TUNNEL TCP_TUNNEL " \
          "TCP_DENIED NONE_NONE TCP_MISS_ABORTED TCP_CF_HIT", codes, " ")
    nc = length(codes)
    split("text/html;charset=utf-8 text/html image/png image/jpeg image/webp " \
          "application/javascript text/css application/json;charset=UTF-8 font/woff2 " \
          "video/mp4 application/octet-stream -", types, " ")
    nt = length(types)
    split("GET GET GET GET GET GET GET GET HEAD POST", methods, " ")
    t = 1732406400
    for (i = 0; i < n; i++) {
        t += rand() * 0.09
        code = codes[int(rand() * nc) + 1]
        host = sprintf("www.site%d.example", int(rand() * rand() * 2000))
        size = int(rand() * rand() * 200000) + 200
        if (code == "TCP_TUNNEL") {
            method = "CONNECT"; url = host ":443"; type = "-"; peer = "HIER_DIRECT/203.0.113.7"
        } else if (code == "TCP_DENIED" || code == "NONE_NONE") {
            method = "GET"; url = (code == "NONE_NONE" ? "error:invalid-request" : "http://" host "/"); type = "text/html"; peer = "HIER_NONE/-"; size = 3900
        } else {
            method = methods[int(rand() * 10) + 1]
            url = sprintf("http://%s/assets/%d/file%d.bin?v=%d", host, int(rand() * 100), int(rand() * 100000), int(rand() * 10))
            if (popular > 0 && rand() < 0.8) {
                k = int(rand() * rand() * rand() * popular)
                url = sprintf("http://www.site%d.example/popular/%d.bin", k % 2000, k)
                size = 200 + (k * 7919) % 400000
            }
            type = types[int(rand() * nt) + 1]
            peer = (code ~ /HIT/ ? "HIER_NONE/-" : "HIER_DIRECT/203.0.113.7")
        }
        printf "%d.%03d %6d 192.168.%d.%d %s/%d %d %s %s - %s %s\n", t, (t - int(t)) * 1000, int(rand() * 900), int(rand() * 4), int(rand() * 250) + 1, code, (code == "TCP_DENIED" ? 403 : (code == "NONE_NONE" ? 400 : 200)), size, method, url, peer, type
    }
}' > "$out"
