#!/usr/bin/env bash
# Measure idle and loaded resident memory (VmRSS) of the six binaries of the running local stack
# (`make up`), the figures behind the resource requests and limits in deploy/k8s.
#   tests/k8s/measure_rss.sh [seconds per load, default 15] [connections, default 64]
# Idle: VmRSS before any load. Loaded: the largest VmRSS sampled every 0.2 s while wrk drives the binary
# (reads and writes on the real routes for the services with a database, /healthz and /metrics for the
# others). Writes go to the local databases (bench-style customers, messages in one conversation).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
secs="${1:-15}"; conns="${2:-64}"
tok="${PARLEY_SERVICE_TOKEN:-dev-service-token}"
export PARLEY_SERVICE_TOKEN="$tok"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pid_of() { cat "$root/.run/pids/$1.pid"; }

# sample PID SECONDS: largest VmRSS (kB) seen every 0.2 s for SECONDS
sample() {
    local pid="$1" end max=0 v
    end=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < end )); do
        v="$(rss "$pid")"; (( v > max )) && max=$v
        sleep 0.2
    done
    echo "$max"
}

# load NAME PORT wrk-args...: wrk in the background while sampling; prints the peak
load() {
    local name="$1" port="$2"; shift 2
    local pid peak
    pid="$(pid_of "$name")"
    wrk -t2 -c"$conns" -d"${secs}s" "$@" >"/tmp/measure_rss.$name.$RANDOM.wrk" 2>&1 &
    local w=$!
    peak="$(sample "$pid" "$secs")"
    wait "$w" || true
    echo "$peak"
}

conv_lua="$(mktemp --suffix=.lua)"
cat >"$conv_lua" <<LUA
wrk.headers["X-Service-Token"] = "$tok"
LUA
# one conversation with an active participant, for messaging writes and reads
conv="$(curl -fsS -H "X-Service-Token: $tok" 'http://127.0.0.1:8002/api/conversations?per_page=1&status=open')"
cid="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"][0]["id"])' "$conv")"
sender="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1])["data"][0]; print([p for p in d["participants"] if not p["left_at"]][0]["customer_id"])' "$conv")"

printf '%-18s %10s %12s %12s\n' binary idle_kB loaded_kB threads
for name in gateway customer-svc conversation-svc messaging-svc media-svc inbound-svc; do
    pid="$(pid_of "$name")"; idle="$(rss "$pid")"; peaks=()
    case "$name" in
        gateway) port=8000 ;; customer-svc) port=8001 ;; conversation-svc) port=8002 ;;
        messaging-svc) port=8003 ;; media-svc) port=8004 ;; inbound-svc) port=8005 ;;
    esac
    base="http://127.0.0.1:$port"
    case "$name" in
        customer-svc)
            # writes first: the list below counts every row and leaves a queue behind when it stops
            peaks+=("$(load "$name" "$port" -s "$root/bench/wrk_upsert.lua" "$base")")
            peaks+=("$(load "$name" "$port" -s "$conv_lua" "$base/api/customers?per_page=200")") ;;
        conversation-svc)
            peaks+=("$(load "$name" "$port" -s "$conv_lua" "$base/api/conversations?per_page=200")") ;;
        messaging-svc)
            pairs=""; for _ in 1 2; do pairs+="$cid:$sender,"; done
            peaks+=("$(BENCH_CONVS="$pairs" load "$name" "$port" -s "$root/bench/wrk_message.lua" "$base")")
            peaks+=("$(load "$name" "$port" -s "$conv_lua" "$base/api/conversations/$cid/messages?per_page=200")") ;;
        media-svc)
            # 256 KiB text uploads, all the same bytes (content-addressed: stored once)
            up_lua="$(mktemp --suffix=.lua)"
            cat >"$up_lua" <<LUA
wrk.method = "POST"
wrk.path = "/api/media/upload"
wrk.headers["X-Service-Token"] = "$tok"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=parleyrss"
wrk.body = "--parleyrss\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rss.txt\"\r\n" ..
    "Content-Type: text/plain\r\n\r\n" .. string.rep("a", 262144) .. "\r\n--parleyrss--\r\n"
LUA
            peaks+=("$(load "$name" "$port" -s "$up_lua" "$base")")
            rm -f "$up_lua"
            peaks+=("$(load "$name" "$port" "$base/metrics")") ;;
        *)
            peaks+=("$(load "$name" "$port" "$base/healthz")")
            peaks+=("$(load "$name" "$port" "$base/metrics")") ;;
    esac
    max=0; for p in "${peaks[@]}"; do (( p > max )) && max=$p; done
    printf '%-18s %10s %12s %12s\n' "$name" "$idle" "$max" "$(ls "/proc/$pid/task" | wc -l)"
    for f in /tmp/measure_rss."$name".*.wrk; do
        grep -qE "Non-2xx|Socket errors" "$f" && { echo "  ($(basename "$f"): $(grep -E 'Non-2xx|Socket errors' "$f" | tr -s ' '))"; }
    done
    rm -f /tmp/measure_rss."$name".*.wrk
done
rm -f "$conv_lua"
