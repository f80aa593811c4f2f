#!/usr/bin/env bash
# inbound-svc's WhatsApp webhook under load, both halves in one run (bench/webhooks.c): signed,
# varied Cloud API deliveries on BENCH_CONNS keep-alive connections for BENCH_SECONDS, then the
# databases are polled until every acknowledged message is stored (at most BENCH_DEADLINE s).
# Prints acks/s (201 answers), answers by status, p50/p99 ack latency and messages processed
# per second, beside the targets of issue 5 (>= 5,000 acks/s, >= 1,500 processed/s).
#   BENCH_VIA=gateway posts through the gateway (/api/v1/webhooks/whatsapp on :8000).
#   Extra arguments go to bench-webhooks (--help lists them), e.g. bench/webhooks.sh -n 5000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conns=${BENCH_CONNS:-32}
secs=${BENCH_SECONDS:-10}
deadline=${BENCH_DEADLINE:-120}

[ "${BENCH_NO_UP:-}" = 1 ] || "$root/deploy/local/up.sh" >/dev/null
make -s -C "$root" build/bin/bench-webhooks

args=(-c "$conns" -d "$secs" -w "$deadline")
[ "${BENCH_VIA:-inbound}" = gateway ] && args+=(--gateway)
exec "$root/build/bin/bench-webhooks" "${args[@]}" "$@"
