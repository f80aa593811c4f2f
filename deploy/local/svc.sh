#!/usr/bin/env bash
# Start and stop the Parley binaries (build/bin/<name>) of the local stack.
#   deploy/local/svc.sh start <name>|all
#   deploy/local/svc.sh stop <name>|all
#   deploy/local/svc.sh restart <name>|all
#   deploy/local/svc.sh status [<name>|all]
# Names: gateway customer-svc conversation-svc messaging-svc media-svc inbound-svc.
# Each runs in its own session, stdout+stderr appended to .run/logs/<name>.log, pid in .run/pids/<name>.pid.
# Start waits (30 s at most) until GET http://127.0.0.1:<port>/readyz answers 2xx.
#
# Environment: every PARLEY_* / KAFKA_BROKERS variable set by the caller wins over the local default and
# passes through to every binary. PORT and DATABASE_URL differ per service, so they are taken from the
# caller only when a single service is started; otherwise per-service PARLEY_<NAME>_PORT /
# PARLEY_<NAME>_DATABASE_URL (NAME upper-cased, '-' as '_', e.g. PARLEY_CUSTOMER_SVC_PORT) override them.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(gateway customer-svc conversation-svc messaging-svc media-svc inbound-svc)
READY_DEADLINE_S="${PARLEY_READY_DEADLINE_S:-30}"
STOP_GRACE_S=10
BIN_DIR="$ROOT_DIR/build/bin"
PG_URL_BASE="postgresql://parley:parley@127.0.0.1:55432"

usage() {
    echo "usage: $0 start|stop|restart <name>|all   or   $0 status [<name>|all]" >&2
    echo "names: ${SERVICES[*]}" >&2
    exit 2
}

default_port() {
    case "$1" in
        gateway) echo 8000 ;; customer-svc) echo 8001 ;; conversation-svc) echo 8002 ;;
        messaging-svc) echo 8003 ;; media-svc) echo 8004 ;; inbound-svc) echo 8005 ;;
        *) die "unknown service '$1' (known: ${SERVICES[*]})" ;;
    esac
}

default_db() {
    case "$1" in
        gateway) echo parley_gateway ;; customer-svc) echo parley_customers ;;
        conversation-svc) echo parley_conversations ;; messaging-svc) echo parley_messaging ;;
        media-svc) echo parley_media ;; inbound-svc) echo parley_inbound ;;
    esac
}

var_prefix() { local v="${1^^}"; printf 'PARLEY_%s_\n' "${v//-/_}"; }

# The port a service listens on, as the caller configured it.
service_port() {
    local name="$1" single="$2" v
    v="$(var_prefix "$name")PORT"
    if [[ -n "${!v:-}" ]]; then echo "${!v}"
    elif [[ "$single" == 1 && -n "${PORT:-}" ]]; then echo "$PORT"
    else default_port "$name"
    fi
}

service_db_url() {
    local name="$1" single="$2" v
    v="$(var_prefix "$name")DATABASE_URL"
    if [[ -n "${!v:-}" ]]; then echo "${!v}"
    elif [[ "$single" == 1 && -n "${DATABASE_URL:-}" ]]; then echo "$DATABASE_URL"
    else echo "$PG_URL_BASE/$(default_db "$name")"
    fi
}

# Shared defaults (SPEC section 8); exported so that each binary sees them, the caller's values first.
export_common_env() {
    export PARLEY_ENV="${PARLEY_ENV:-development}"
    export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
    export PARLEY_SERVICE_TOKEN="${PARLEY_SERVICE_TOKEN:-dev-service-token}"
    export PARLEY_LOG_LEVEL="${PARLEY_LOG_LEVEL:-info}"
    export PARLEY_PUBLIC_URL="${PARLEY_PUBLIC_URL:-http://127.0.0.1:$(service_port gateway 0)}"
    export PARLEY_CUSTOMER_URL="${PARLEY_CUSTOMER_URL:-http://127.0.0.1:$(service_port customer-svc 0)}"
    export PARLEY_CONVERSATION_URL="${PARLEY_CONVERSATION_URL:-http://127.0.0.1:$(service_port conversation-svc 0)}"
    export PARLEY_MESSAGING_URL="${PARLEY_MESSAGING_URL:-http://127.0.0.1:$(service_port messaging-svc 0)}"
    export PARLEY_MEDIA_URL="${PARLEY_MEDIA_URL:-http://127.0.0.1:$(service_port media-svc 0)}"
    export PARLEY_INBOUND_URL="${PARLEY_INBOUND_URL:-http://127.0.0.1:$(service_port inbound-svc 0)}"
    export PARLEY_BOOTSTRAP_API_KEY="${PARLEY_BOOTSTRAP_API_KEY:-dev-api-key}"
    export PARLEY_WHATSAPP_APP_SECRET="${PARLEY_WHATSAPP_APP_SECRET:-dev-whatsapp-secret}"
    export PARLEY_WHATSAPP_VERIFY_TOKEN="${PARLEY_WHATSAPP_VERIFY_TOKEN:-dev-verify-token}"
    export PARLEY_TELEGRAM_SECRET_TOKEN="${PARLEY_TELEGRAM_SECRET_TOKEN:-dev-telegram-secret}"
    # Channel providers: the local stack talks to the test suite's fake provider (tests/system/fake_provider.py),
    # never to the real APIs, unless the caller points these elsewhere.
    export PARLEY_WHATSAPP_API_BASE="${PARLEY_WHATSAPP_API_BASE:-http://127.0.0.1:8090/whatsapp}"
    export PARLEY_TELEGRAM_API_BASE="${PARLEY_TELEGRAM_API_BASE:-http://127.0.0.1:8090/telegram}"
    export PARLEY_WHATSAPP_ACCESS_TOKEN="${PARLEY_WHATSAPP_ACCESS_TOKEN:-dev-whatsapp-token}"
    export PARLEY_TELEGRAM_BOT_TOKEN="${PARLEY_TELEGRAM_BOT_TOKEN:-123456:dev-telegram-token}"
    export PARLEY_MEDIA_URL_SECRET="${PARLEY_MEDIA_URL_SECRET:-dev-media-url-secret}"
    export PARLEY_MEDIA_DIR="${PARLEY_MEDIA_DIR:-$RUN_DIR/media}"
}

ready_url() { printf 'http://127.0.0.1:%s/readyz\n' "$1"; }
is_ready() { curl -fsS -o /dev/null --max-time 2 "$(ready_url "$1")" 2>/dev/null; }

# launch NAME SINGLE: start one binary in the background (or find it running); its pid in LAUNCHED_PID.
launch() {
    local name="$1" single="$2" bin port db log pid
    bin="$BIN_DIR/$name"
    log="$LOG_DIR/$name.log"
    port="$(service_port "$name" "$single")"
    pid="$(running_pid "$name" "$bin")"
    if [[ -n "$pid" ]]; then
        log "$name: already running (pid $pid, port $port)"
        LAUNCHED_PID="$pid"
        return 0
    fi
    [[ -e "$bin" ]] || die "$name: binary $bin not found; build it first (make -C $ROOT_DIR all)"
    [[ -x "$bin" ]] || die "$name: $bin is not executable"
    if port_in_use "$port"; then
        die "$name: port 127.0.0.1:$port is already in use by a process svc.sh did not start (no live pid in $(pid_file "$name")); stop it or set $(var_prefix "$name")PORT"
    fi
    db="$(service_db_url "$name" "$single")"
    if [[ "$name" == media-svc ]]; then mkdir -p "$PARLEY_MEDIA_DIR"; fi
    # setsid: own session, so ^C in the caller's terminal does not reach it; exec keeps the pid as $!.
    (
        cd "$ROOT_DIR"
        export PORT="$port" DATABASE_URL="$db"
        exec setsid "$bin"
    ) </dev/null >>"$log" 2>&1 {PARLEY_LOCK_FD}>&- &
    pid=$!
    printf '%s\n' "$pid" >"$(pid_file "$name")"
    log "$name: started pid $pid on port $port (log $log)"
    LAUNCHED_PID="$pid"
}

# wait_ready "name:pid:port"...: poll every /readyz until all answer; fail at the first that exits,
# or name those not ready when the deadline passes.
wait_ready() {
    local deadline entry name pid port pending=("$@") still failed=()
    deadline=$(( $(now_ms) + READY_DEADLINE_S * 1000 ))
    while (( ${#pending[@]} > 0 )); do
        still=()
        for entry in "${pending[@]}"; do
            IFS=: read -r name pid port <<<"$entry"
            if is_ready "$port"; then
                log "$name: ready ($(ready_url "$port"))"
            elif ! pid_matches "$pid" "$BIN_DIR/$name"; then
                local rc=""
                if wait "$pid" 2>/dev/null; then rc=0; else rc=$?; fi
                if (( rc == 127 )); then rc=""; fi   # not our child (started by an earlier run)
                rm -f "$(pid_file "$name")"
                tail_log "$LOG_DIR/$name.log" 30
                die "$name: the process (pid $pid) exited${rc:+ with status $rc} before $(ready_url "$port") answered"
            else
                still+=("$entry")
            fi
        done
        pending=("${still[@]+"${still[@]}"}")
        (( ${#pending[@]} > 0 )) || break
        if (( $(now_ms) >= deadline )); then
            for entry in "${pending[@]}"; do
                IFS=: read -r name pid port <<<"$entry"
                failed+=("$name")
                tail_log "$LOG_DIR/$name.log" 30
                printf '%s: %s: last /readyz answer: %s\n' "$SCRIPT_NAME" "$name" \
                    "$(curl -sS --max-time 2 "$(ready_url "$port")" 2>&1 | head -c 300)" >&2
            done
            die "not ready within ${READY_DEADLINE_S} s: ${failed[*]} (still running; see the logs above, or deploy/local/svc.sh stop all)"
        fi
        sleep 0.2
    done
}

cmd_start() {
    local names=("$@") single=0 name entries=()
    (( ${#names[@]} == 1 )) && single=1
    command -v curl >/dev/null 2>&1 || die "curl not found (run deploy/local/install.sh)"
    export_common_env
    for name in "${names[@]}"; do
        launch "$name" "$single"
        entries+=("$name:$LAUNCHED_PID:$(service_port "$name" "$single")")
    done
    wait_ready "${entries[@]}"
}

cmd_stop() {
    local name
    for name in "$@"; do
        stop_pid "$name" "$BIN_DIR/$name" "$STOP_GRACE_S"
    done
}

cmd_status() {
    local name pid port rc=0
    for name in "$@"; do
        port="$(service_port "$name" 0)"
        pid="$(running_pid "$name" "$BIN_DIR/$name")"
        if [[ -z "$pid" ]]; then
            log "$name: not running"; rc=3
        elif is_ready "$port"; then
            log "$name: running (pid $pid), ready on port $port"
        else
            log "$name: running (pid $pid), NOT ready on port $port"; rc=1
        fi
    done
    return "$rc"
}

[[ $# -ge 1 ]] || usage
action="$1"; shift
if [[ $# -eq 0 && "$action" == status ]]; then set -- all; fi
[[ $# -eq 1 ]] || usage
target="$1"
if [[ "$target" == all ]]; then
    targets=("${SERVICES[@]}")
else
    default_port "$target" >/dev/null
    targets=("$target")
fi

take_lock svc
case "$action" in
    start) cmd_start "${targets[@]}" ;;
    stop) cmd_stop "${targets[@]}" ;;
    restart) cmd_stop "${targets[@]}"; cmd_start "${targets[@]}" ;;
    status) cmd_status "${targets[@]}" ;;
    *) usage ;;
esac
