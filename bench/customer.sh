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

# wrk: requests/s, p50, p99 (ms), non-2xx count.
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
        awk '/^tps/ {tps=$3} !lat && /latency average/ {lat=$4} END {printf "%.0f %.3f\n", tps, lat}'
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Alternate the four measurements, so drift on a shared machine hits both sides alike.
rounds=${BENCH_ROUNDS:-3}
declare -a G P U Q
printf 'round  GET req/s (p50/p99 ms)   SELECT tps   POST req/s (p50/p99 ms)   upsert tps\n'
for r in $(seq 1 "$rounds"); do
    read -r g g50 g99 gbad < <(run_wrk wrk_get.lua)
    read -r p plat < <(run_pgbench "${scripts[@]}")
    read -r u u50 u99 ubad < <(run_wrk wrk_upsert.lua)
    read -r q qlat < <(run_pgbench -f "$root/bench/pg_upsert.sql")
    [ "$gbad" = 0 ] && [ "$ubad" = 0 ] || { echo "non-2xx answers: GET $gbad, POST $ubad" >&2; exit 1; }
    G+=("$g"); P+=("$p"); U+=("$u"); Q+=("$q")
    printf '%-6s %6s (%s/%s)  %11s   %6s (%s/%s)  %15s\n' "$r" "$g" "$g50" "$g99" "$p" "$u" "$u50" \
        "$u99" "$q"
done
g=$(median "${G[@]}"); p=$(median "${P[@]}"); u=$(median "${U[@]}"); q=$(median "${Q[@]}")
printf '\ncustomer-svc vs pgbench: %s connections, %s rounds of %ss each, loopback, medians\n' \
    "$conns" "$rounds" "$secs"
awk -v g="$g" -v p="$p" -v u="$u" -v q="$q" 'BEGIN {
    printf "GET /api/customers/{id} %6d req/s  vs same SELECT %6d tps: ratio %.2f (target >= 0.60)\n", g, p, g/p
    printf "POST /api/customers     %6d req/s  vs same upsert %6d tps: ratio %.2f (target >= 0.70)\n", u, q, u/q }'
