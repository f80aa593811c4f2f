#!/usr/bin/env bash
# customer-svc against PostgreSQL itself, side by side in one run, on loopback:
#   GET /api/customers/{id}  vs  pgbench running the same SELECT
#   POST /api/customers      vs  pgbench running the same upsert+outbox statement
# Same concurrency (BENCH_CONNS), same duration (BENCH_SECONDS), same database.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conns=${BENCH_CONNS:-8}
secs=${BENCH_SECONDS:-10}
svc=${PARLEY_CUSTOMER_URL:-http://127.0.0.1:8001}
db=${BENCH_DATABASE_URL:-postgresql://parley:parley@127.0.0.1:55432/parley_customers}
token=${PARLEY_SERVICE_TOKEN:-dev-service-token}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ "${BENCH_NO_UP:-}" = 1 ] || "$root/deploy/local/up.sh" >/dev/null

# Eight customers to read, made through the API.
ids=()
for i in 1 2 3 4 5 6 7 8; do
    ids+=("$(curl -sf -H "X-Service-Token: $token" -H 'Content-Type: application/json' \
        -d "{\"external_type\":\"bench\",\"external_id\":\"read-$i\",\"name\":\"Reader $i\"}" \
        "$svc/api/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
done
scripts=()
for i in "${!ids[@]}"; do
    echo "SELECT customer_json(c) FROM customers c WHERE id = '${ids[$i]}'::uuid;" > "$tmp/get$i.sql"
    scripts+=(-f "$tmp/get$i.sql")
done

# wrk: requests/s, p50, p99 (ms).
run_wrk() {
    local out
    out=$(BENCH_IDS=$(IFS=,; echo "${ids[*]}") PARLEY_SERVICE_TOKEN=$token \
        wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$root/bench/$1" "$svc" 2>&1)
    awk '/Requests\/sec/ {rps=$2}
         function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; return v*1000 }
         $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
         /Non-2xx/ {bad=$NF}
         END {printf "%.0f %.2f %.2f %s\n", rps, p50, p99, bad+0}' <<< "$out"
}

# pgbench: transactions/s and average latency (ms).
run_pgbench() {
    pgbench -n -M prepared -c "$conns" -j 2 -T "$secs" "$@" "$db" 2>&1 |
        awk '/^tps/ {tps=$3} /latency average/ {lat=$4} END {printf "%.0f %.2f\n", tps, lat}'
}

read -r get_rps get_p50 get_p99 get_bad < <(run_wrk wrk_get.lua)
read -r pg_get_tps pg_get_lat < <(run_pgbench "${scripts[@]}")
read -r up_rps up_p50 up_p99 up_bad < <(run_wrk wrk_upsert.lua)
read -r pg_up_tps pg_up_lat < <(run_pgbench -f "$root/bench/pg_upsert.sql")

printf '\ncustomer-svc benchmark: %s connections, %ss each, loopback\n' "$conns" "$secs"
printf '%-34s %10s %9s %9s %7s\n' "" "req/s" "p50 ms" "p99 ms" "non2xx"
printf '%-34s %10s %9s %9s %7s\n' "GET /api/customers/{id} (wrk)" "$get_rps" "$get_p50" "$get_p99" "$get_bad"
printf '%-34s %10s %9s %9s\n' "same SELECT (pgbench)" "$pg_get_tps" "avg $pg_get_lat" "-"
printf '%-34s %10s %9s %9s %7s\n' "POST /api/customers (wrk)" "$up_rps" "$up_p50" "$up_p99" "$up_bad"
printf '%-34s %10s %9s %9s\n' "same upsert+outbox (pgbench)" "$pg_up_tps" "avg $pg_up_lat" "-"
awk -v a="$get_rps" -v b="$pg_get_tps" -v c="$up_rps" -v d="$pg_up_tps" 'BEGIN {
    printf "\nratio GET/SELECT = %.2f (target >= 0.60)\nratio upsert/transaction = %.2f (target >= 0.70)\n", a/b, c/d }'
