#!/usr/bin/env bash
# Stop the local stack: the services, then Kafka, then PostgreSQL.
# Only processes named by .run/pids/*.pid are touched, and only while /proc/<pid>/cmdline still shows the
# expected program (TERM, a grace period, then KILL; a paused Kafka gets SIGCONT first).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

failed=()
# A paused broker (kill -STOP, as failure tests do) would make the services' final producer flush wait
# for nothing: resume it first, so they drain and exit in their grace period.
kpid="$(running_pid kafka kafka.Kafka)"
if [[ -n "$kpid" && "$(proc_state "$kpid")" == "T" ]]; then
    log "kafka: pid $kpid is paused (SIGSTOP); sending SIGCONT before stopping the services"
    kill -CONT "$kpid" 2>/dev/null || true
fi
"$LOCAL_DIR/svc.sh" stop all || failed+=(services)
"$LOCAL_DIR/kafka.sh" stop || failed+=(kafka)
"$LOCAL_DIR/pg.sh" stop || failed+=(postgres)
if (( ${#failed[@]} > 0 )); then
    die "could not stop: ${failed[*]} (see the messages above)"
fi
log "local stack stopped"
