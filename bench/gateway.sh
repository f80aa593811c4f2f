#!/usr/bin/env bash
# The gateway's own cost, beside nginx, in one run on loopback (wrk, same connections and time):
#   1. GET /api/v1/customers/{id} through the gateway (API key, rate limit and api_logs on)
#   2. the same request straight to customer-svc
#   3. nginx proxy_pass (upstream keepalive) in front of the same customer-svc
#   4. gateway vs nginx proxy_pass with the upstream an nginx returning a static JSON body,
#      which isolates the proxies' own cost;
#   5. beside them, bench-proxy-floor (bench/proxy_floor.c) in front of the same static nginx:
#      the cheapest relay libmicrohttpd and libcurl allow (one event loop per thread, no key,
#      limit or log), which bounds what a gateway built on them could reach.
# A bench gateway runs on its own port with a rate limit high enough never to refuse.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conns=${BENCH_CONNS:-32}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
token=${PARLEY_SERVICE_TOKEN:-dev-service-token}
key=${PARLEY_BOOTSTRAP_API_KEY:-dev-api-key}
svc=${PARLEY_CUSTOMER_URL:-http://127.0.0.1:8001}
run=$root/.run/bench-gateway
mkdir -p "$run"

[ "${BENCH_NO_UP:-}" = 1 ] || "$root/deploy/local/up.sh" >/dev/null
# nginx is only for this comparison, so it is installed here rather than by make up / make test.
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light >/dev/null
command -v nginx >/dev/null || { echo "bench/gateway.sh needs nginx (apt-get install nginx-light)" >&2; exit 1; }

id=$(curl -sf -H "X-Service-Token: $token" -H 'Content-Type: application/json' \
    -d '{"external_type":"bench","external_id":"gateway-read","name":"Gateway Reader"}' \
    "$svc/api/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
body=$(curl -sf -H "X-Service-Token: $token" "$svc/api/customers/$id")

cat > "$run/nginx.conf" <<CONF
worker_processes auto;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
daemon on;
events { worker_connections 2048; }
http {
    access_log off;
    upstream customer { server ${svc#http://}; keepalive 64; }
    upstream static { server 127.0.0.1:18082; keepalive 64; }
    server { listen 127.0.0.1:18081;
        location / { proxy_pass http://customer; proxy_http_version 1.1;
                     proxy_set_header Connection ""; proxy_set_header X-Service-Token $token; } }
    server { listen 127.0.0.1:18082;
        location / { default_type application/json; return 200 '$body'; } }
    server { listen 127.0.0.1:18083;
        location / { proxy_pass http://static; proxy_http_version 1.1;
                     proxy_set_header Connection ""; } }
}
CONF
start_gateway() { # port upstream
    PORT=$1 PARLEY_CUSTOMER_URL=$2 PARLEY_RATE_LIMIT_RPS=1000000 PARLEY_RATE_LIMIT_BURST=1000000 \
        DATABASE_URL=${GATEWAY_DATABASE_URL:-postgresql://parley:parley@127.0.0.1:55432/parley_gateway} \
        PARLEY_LOG_LEVEL=warn "$root/build/bin/gateway" >>"$run/gateway-$1.log" 2>&1 &
    echo $!
}
cleanup() {
    kill "${gw1:-}" "${gw2:-}" "${floor:-}" 2>/dev/null || true
    [ -f "$run/nginx.pid" ] && kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
make -s -C "$root" build/bin/bench-proxy-floor
nginx -c "$run/nginx.conf" -p "$run"
gw1=$(start_gateway 18090 "$svc")
gw2=$(start_gateway 18091 http://127.0.0.1:18082)
"$root/build/bin/bench-proxy-floor" 18092 http://127.0.0.1:18082 >>"$run/floor.log" 2>&1 &
floor=$!
for port in 18090 18091 18092 18081 18083; do
    for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
        [ $port = 18081 ] || [ $port = 18083 ] && break; sleep 0.1; done
done
sleep 0.5

lua=$run/req.lua
printf 'wrk.headers["X-API-Key"] = "%s"\nwrk.headers["X-Service-Token"] = "%s"\n' "$key" "$token" > "$lua"
run_wrk() { # url -> "rps p50 p99 non2xx"
    wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$lua" "$1" 2>&1 |
        awk '/Requests\/sec/ {rps=$2}
             function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; return v*1000 }
             $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} /Non-2xx/ {bad=$NF}
             END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad+0}'
}
declare -A R
names=(gateway direct nginx gateway-static nginx-static floor-static)
urls=("http://127.0.0.1:18090/api/v1/customers/$id" "$svc/api/customers/$id"
      "http://127.0.0.1:18081/api/customers/$id" "http://127.0.0.1:18091/api/v1/customers/$id"
      "http://127.0.0.1:18083/api/customers/$id" "http://127.0.0.1:18092/api/customers/$id")
for r in $(seq 1 "$rounds"); do
    for i in "${!names[@]}"; do
        R[${names[$i]}]+="$(run_wrk "${urls[$i]}");"
    done
done
best() { # name -> median-ish (the round with the median rps) "rps p50 p99 bad"
    tr ';' '\n' <<< "${R[$1]}" | sed '/^$/d' | sort -n | awk '{l[NR]=$0} END {print l[int((NR+1)/2)]}'
}
printf '\nGET /api/v1/customers/{id}: %s connections, %s rounds of %ss, loopback, median round\n' \
    "$conns" "$rounds" "$secs"
printf '%-44s %9s %8s %8s %7s\n' "" "req/s" "p50 ms" "p99 ms" "non2xx"
for n in "${names[@]}"; do
    read -r rps p50 p99 bad <<< "$(best "$n")"
    printf '%-44s %9s %8s %8s %7s\n' "$n" "$rps" "$p50" "$p99" "$bad"
    eval "rps_${n//-/_}=$rps p99_${n//-/_}=$p99"
done
awk -v a="$rps_gateway" -v b="$rps_nginx" -v c="$p99_gateway" -v d="$p99_nginx" \
    -v e="$rps_gateway_static" -v f="$rps_nginx_static" -v g="$p99_gateway_static" \
    -v h="$p99_nginx_static" -v i="$rps_floor_static" -v j="$p99_floor_static" 'BEGIN {
    printf "\ngateway / nginx, customer-svc upstream: throughput %.2f (target >= 1.0), p99 %.2f (target <= 1.2)\n", a/b, c/d
    printf "gateway / nginx, static upstream:       throughput %.2f (target >= 1.0), p99 %.2f (target <= 1.2)\n", e/f, g/h
    printf "floor / nginx, static upstream:         throughput %.2f, p99 %.2f (a relay with no gateway work: the bound of MHD + libcurl)\n", i/f, j/h }'
