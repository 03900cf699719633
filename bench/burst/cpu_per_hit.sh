#!/usr/bin/env bash
# CPU µs per 1 KiB hit of a cachalot binary (issue 15: allocators compared):
# nginx origin, wrk (pinned to CPU 1) through the proxy, proxy CPU from /proc.
#   bench/burst/cpu_per_hit.sh BINARY
set -euo pipefail
BIN=$1
W=$(mktemp -d /tmp/cpureq.XXXX); chmod 755 $W; mkdir -p $W/www $W/tmp
head -c 1024 /dev/urandom > $W/www/1k
cat > $W/nginx.conf <<CONF
daemon on; pid $W/nginx.pid; error_log $W/err.log;
events {} http { access_log off; client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
server { listen 127.0.0.1:18681; root $W/www; location / { expires 1h; } } }
CONF
nginx -c $W/nginx.conf -p $W
printf '[server]\nlisten = "127.0.0.1:18628"\n[cache]\ndir = "%s/cache"\n[log]\nlevel = "warn"\naccess = ""\n[[acl]]\nname = "b"\naction = "allow"\nsrc = ["127.0.0.0/8"]\n' $W > $W/c.toml
$BIN --config $W/c.toml & P=$!
sleep 0.5
curl -s -o /dev/null -x http://127.0.0.1:18628 http://127.0.0.1:18681/1k
ticks() { awk '{print $14+$15}' /proc/$P/stat; }
for round in 1 2 3; do
  t0=$(ticks)
  out=$(BENCH_URL=http://127.0.0.1:18681/1k taskset -c 1 wrk -t 1 -c 50 -d 5s -s "$(dirname "$0")/../proxy.lua" http://127.0.0.1:18628 2>&1)
  t1=$(ticks)
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "round $round: $reqs requests, $(( (t1-t0)*10000 / reqs )) µs CPU/req (proxy), $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s"
done
kill $P; kill $(cat $W/nginx.pid); sleep 0.3; rm -rf $W
