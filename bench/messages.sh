#!/usr/bin/env bash
# messaging-svc POST /api/messages against PostgreSQL itself, side by side, on loopback:
# wrk with one connection (and one conversation) per thread vs pgbench running the same
# insert+outbox statement with one conversation per client, at the same concurrency.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conns=${BENCH_CONNS:-32}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
token=${PARLEY_SERVICE_TOKEN:-dev-service-token}
cust=${PARLEY_CUSTOMER_URL:-http://127.0.0.1:8001}
conv=${PARLEY_CONVERSATION_URL:-http://127.0.0.1:8002}
msg=${PARLEY_MESSAGING_URL:-http://127.0.0.1:8003}
db=${BENCH_DATABASE_URL:-postgresql://parley:parley@127.0.0.1:55432/parley_messaging}

[ "${BENCH_NO_UP:-}" = 1 ] || "$root/deploy/local/up.sh" >/dev/null

post() { curl -sf -H "X-Service-Token: $token" -H 'Content-Type: application/json' -d "$2" "$1"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# One direct conversation per connection, between a fresh customer and the business.
run=$(date +%s)
biz=$(post "$cust/api/customers" "{\"external_type\":\"bench\",\"external_id\":\"biz-$run\"}" | field id)
convs=()
for i in $(seq 1 "$conns"); do
    c=$(post "$cust/api/customers" "{\"external_type\":\"bench\",\"external_id\":\"c$i-$run\"}" | field id)
    id=$(post "$conv/api/conversations" "{\"type\":\"direct\",\"participants\":[\"$c\",\"$biz\"]}" |
        field id)
    convs+=("$id:$c")
done

run_wrk() {
    BENCH_CONVS=$(IFS=,; echo "${convs[*]}") PARLEY_SERVICE_TOKEN=$token \
        wrk -t"$conns" -c"$conns" -d"${secs}s" --latency -s "$root/bench/wrk_message.lua" "$msg" 2>&1 |
        awk '/Requests\/sec/ {rps=$2}
             function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; return v*1000 }
             $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} /Non-2xx/ {bad=$NF}
             END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad+0}'
}
run_pgbench() {
    pgbench -n -M prepared -c "$conns" -j 2 -T "$secs" -f "$root/bench/pg_message.sql" "$db" 2>&1 |
        awk '/^tps/ {tps=$3} END {printf "%.0f\n", tps}'
}
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

declare -a W P
printf 'round  POST /api/messages req/s (p50/p99 ms)   same insert+outbox tps\n'
for r in $(seq 1 "$rounds"); do
    read -r w p50 p99 bad < <(run_wrk)
    [ "$bad" = 0 ] || { echo "non-2xx answers: $bad" >&2; exit 1; }
    read -r p < <(run_pgbench)
    W+=("$w"); P+=("$p")
    printf '%-6s %8s (%s/%s) %30s\n' "$r" "$w" "$p50" "$p99" "$p"
done
w=$(median "${W[@]}"); p=$(median "${P[@]}")
printf '\nmessaging-svc vs pgbench: %s connections, %s rounds of %ss, loopback, medians\n' \
    "$conns" "$rounds" "$secs"
awk -v w="$w" -v p="$p" 'BEGIN {
    printf "POST /api/messages %6d req/s  vs same insert+outbox %6d tps: ratio %.2f (target >= 0.70)\n",
        w, p, w/p }'
