#!/usr/bin/env bash
# media-svc upload and download throughput of a 10 MiB file, beside cp of the same file on the same disk:
#   upload    POST /api/media/upload (multipart, streamed to a temporary file, SHA-256, fsync, rename)
#             vs  cp + fsync of the file (the same work minus HTTP, parsing and hashing)
#   download  GET /api/media/{id}/content into a file  vs  cp of the stored file (both from a warm page cache)
# Client times are curl's own time_total (connect to last byte); cp is timed around the command.
# Every upload carries new bytes (so each one is really written, not deduplicated). Median of BENCH_RUNS.
# Files are written under the media storage directory's file system (PARLEY_MEDIA_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-7}
size_mib=${BENCH_MEDIA_MIB:-10}
svc=${PARLEY_MEDIA_URL:-http://127.0.0.1:8004}
token=${PARLEY_SERVICE_TOKEN:-dev-service-token}
media_dir=${PARLEY_MEDIA_DIR:-$root/.run/media}

[ "${BENCH_NO_UP:-}" = 1 ] || "$root/deploy/local/up.sh" >/dev/null
[ -d "$media_dir" ] || { echo "bench/media.sh: no media directory $media_dir (is the stack up?)" >&2; exit 1; }
work=$(mktemp -d "$media_dir/../bench-media.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Distinct files: a PNG signature (an allowed type), a counter, then random bytes.
for i in $(seq 1 "$runs"); do
    { printf '\x89PNG\r\n\x1a\n%08d' "$i"; head -c $((size_mib * 1024 * 1024 - 16)) /dev/urandom; } \
        > "$work/src$i.png"
done
now() { date +%s.%N; }
mbps() { python3 -c "import sys; print(f'{$size_mib * 1.048576 / (float(sys.argv[2]) - float(sys.argv[1])):.0f}')" "$1" "$2"; }
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

up=() cpsync=() down=() cpread=() ids=()
for i in $(seq 1 "$runs"); do
    secs=$(curl -sf -w '%{time_total}' -o "$work/up$i.json" -H "X-Service-Token: $token" \
        -F "file=@$work/src$i.png" "$svc/api/media/upload")
    up+=("$(mbps 0 "$secs")")
    ids+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/up$i.json")")

    t0=$(now); cp "$work/src$i.png" "$work/copy$i.png"; sync "$work/copy$i.png"; t1=$(now)
    cpsync+=("$(mbps "$t0" "$t1")")
done
for i in $(seq 1 "$runs"); do
    id=${ids[$((i - 1))]}
    secs=$(curl -sf -w '%{time_total}' -H "X-Service-Token: $token" -o "$work/down$i.png" \
        "$svc/api/media/$id/content")
    down+=("$(mbps 0 "$secs")")
    cmp -s "$work/down$i.png" "$work/src$i.png" || { echo "bench/media.sh: download $i differs" >&2; exit 1; }
    stored=$(find "$media_dir" -path "$media_dir/tmp" -prune -o -type f -name "$(sha256sum "$work/src$i.png" | cut -c1-64)" -print)
    t0=$(now); cp "$stored" "$work/cp$i.png"; t1=$(now)
    cpread+=("$(mbps "$t0" "$t1")")
done

u=$(echo "${up[*]}" | median); c=$(echo "${cpsync[*]}" | median)
d=$(echo "${down[*]}" | median); r=$(echo "${cpread[*]}" | median)
printf '%s MiB file, median of %s runs (MB/s)\n' "$size_mib" "$runs"
printf '%-10s %10s %16s %8s\n' "" "media-svc" "cp" "ratio"
printf '%-10s %10s %16s %8s\n' upload "$u" "$c (cp+fsync)" "$(python3 -c "print(f'{$u / $c:.2f}')")"
printf '%-10s %10s %16s %8s\n' download "$d" "$r (cp)" "$(python3 -c "print(f'{$d / $r:.2f}')")"
