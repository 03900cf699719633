#!/usr/bin/env bash
# Adversarial large-object run, 3 rounds: 8 clients hanging up after 0.1-0.9 s,
# 4 reading at 20 MB/s (sha256 checked), 6 random ranges (checked against the
# file) of one 200 MiB object, and 10 distinct 20 MiB objects, through a
# 300 MiB disk tier (eviction under load); then result codes, errors in the
# proxy log, SIGTERM time and the cache size.  bench/large/adversarial.sh BINARY
set -uo pipefail
BIN=$1
W=$(mktemp -d /tmp/adv.XXXX); chmod 755 $W; mkdir -p $W/www/obj $W/tmp
head -c $((200*1024*1024)) /dev/urandom > $W/www/big.bin
head -c $((20*1024*1024)) /dev/urandom > $W/www/mid.bin
for i in $(seq 10); do ln -s $W/www/mid.bin $W/www/obj/$i; done
cat > $W/nginx.conf <<CONF
daemon on; pid $W/nginx.pid; error_log $W/err.log;
events {} http { access_log off; sendfile on; client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
server { listen 127.0.0.1:18881; root $W/www; location / { expires 1h; } } }
CONF
nginx -c $W/nginx.conf -p $W
printf '[server]\nlisten = "127.0.0.1:18828"\n[cache]\ndir = "%s/cache"\ndisk_size = "300MiB"\nmax_object_size = "256MiB"\n[log]\nlevel = "warn"\naccess = "%s/access.log"\n[[acl]]\nname = "b"\naction = "allow"\nsrc = ["127.0.0.0/8"]\n' $W $W > $W/c.toml
$BIN --config $W/c.toml > $W/proxy.out 2> $W/proxy.err & P=$!
sleep 0.5
X="-x http://127.0.0.1:18828"
BIGSUM=$(sha256sum < $W/www/big.bin | cut -d' ' -f1)
MIDSUM=$(sha256sum < $W/www/mid.bin | cut -d' ' -f1)
for round in 1 2 3; do
  pids=()
  for i in $(seq 8); do (curl -s $X --max-time 0.$((RANDOM%9+1)) -o /dev/null http://127.0.0.1:18881/big.bin; true) & pids+=($!); done
  for i in $(seq 4); do (s=$(curl -s $X --limit-rate 20M http://127.0.0.1:18881/big.bin | sha256sum | cut -d' ' -f1); [ "$s" = "$BIGSUM" ] && echo ok-big-slow || echo BAD-big-slow) & pids+=($!); done
  for i in $(seq 6); do (a=$((RANDOM*1000)); b=$((a+RANDOM)); got=$(curl -s $X -r $a-$b http://127.0.0.1:18881/big.bin | sha256sum | cut -d' ' -f1); want=$(tail -c +$((a+1)) $W/www/big.bin | head -c $((b-a+1)) | sha256sum | cut -d' ' -f1); [ "$got" = "$want" ] && echo ok-range || echo "BAD-range $a-$b") & pids+=($!); done
  for i in $(seq 10); do (s=$(curl -s $X http://127.0.0.1:18881/obj/$i | sha256sum | cut -d' ' -f1); [ "$s" = "$MIDSUM" ] && echo ok-mid || echo BAD-mid) & pids+=($!); done
  for p in "${pids[@]}"; do wait $p; done
done | sort | uniq -c
echo "proxy alive: $(kill -0 $P && echo yes)"; grep -c . $W/access.log; awk '{print $4}' $W/access.log | sort | uniq -c
grep -iE "panic|error" $W/proxy.err | head -5
/usr/bin/time -f "SIGTERM->exit %es" bash -c "kill $P; while kill -0 $P 2>/dev/null; do sleep 0.05; done"
du -sh $W/cache
kill $(cat $W/nginx.pid); sleep 0.3; rm -rf $W
