# shellcheck shell=bash
# Shared helpers for deploy/local/*.sh. Sourced, never run.
#
# Environment (all optional):
#   PARLEY_RUN_DIR    runtime state (default <root>/.run)
#   PARLEY_CACHE_DIR  downloaded Kafka jars (default $HOME/.cache/parley)

if [[ -n "${PARLEY_LIB_LOADED:-}" ]]; then return 0; fi
PARLEY_LIB_LOADED=1

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$LOCAL_DIR/../.." && pwd)"
SCRIPT_NAME="$(basename "${0:-parley}")"

RUN_DIR="${PARLEY_RUN_DIR:-$ROOT_DIR/.run}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"          # absolute, whatever the caller gave
# shellcheck disable=SC2034  # used by the scripts that source this file
CACHE_DIR="${PARLEY_CACHE_DIR:-${HOME:-/root}/.cache/parley}"
PID_DIR="$RUN_DIR/pids"
LOG_DIR="$RUN_DIR/logs"
mkdir -p "$PID_DIR" "$LOG_DIR"

log()  { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
warn() { printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# now_ms: milliseconds since the epoch (for deadlines and timings).
now_ms() { date +%s%3N; }

# take_lock NAME: serialise concurrent runs of the same script part (held until the script exits).
take_lock() {
    local f="$RUN_DIR/.$1.lock"
    exec {PARLEY_LOCK_FD}>"$f"
    if ! flock -w 120 "$PARLEY_LOCK_FD"; then
        die "another $1 operation holds $f for more than 120 s"
    fi
}

# no_lock_fd CMD...: run CMD without the lock descriptor, so that a daemon it leaves behind does not
# keep holding the lock after this script exits.
no_lock_fd() {
    if [[ -n "${PARLEY_LOCK_FD:-}" ]]; then
        "$@" {PARLEY_LOCK_FD}>&-
    else
        "$@"
    fi
}

pid_file() { printf '%s/%s.pid\n' "$PID_DIR" "$1"; }

# read_pid NAME: print the pid recorded for NAME, or nothing.
read_pid() {
    local f pid
    f="$(pid_file "$1")"
    [[ -f "$f" ]] || return 0
    pid="$(tr -dc '0-9' <"$f" 2>/dev/null || true)"
    [[ -n "$pid" ]] && printf '%s\n' "$pid"
    return 0
}

# cmdline PID: the process's argv joined by spaces (empty if it is gone).
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# pid_matches PID PATTERN: the process exists, is not a zombie, and its cmdline contains PATTERN.
pid_matches() {
    local pid="$1" pattern="$2" cmd state
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    state="$(proc_state "$pid")"
    [[ "$state" != "Z" && "$state" != "X" ]] || return 1
    cmd="$(cmdline "$pid")"
    [[ -n "$cmd" && "$cmd" == *"$pattern"* ]]
}

# proc_state PID: the one-letter state from /proc/PID/stat (R S D T t Z ...).
proc_state() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null || true)"
    [[ -n "$stat" ]] || return 0
    stat="${stat##*) }"                      # the comm field may hold spaces; state follows ") "
    printf '%s\n' "${stat%% *}"
}

# running_pid NAME PATTERN: print the recorded pid if that process is alive and is the expected
# program; remove a stale pid file otherwise.
running_pid() {
    local name="$1" pattern="$2" pid
    pid="$(read_pid "$name")"
    [[ -n "$pid" ]] || return 0
    if pid_matches "$pid" "$pattern"; then
        printf '%s\n' "$pid"
    else
        rm -f "$(pid_file "$name")"
    fi
    return 0
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pid NAME PATTERN GRACE_SECONDS: TERM the recorded process (only if it is still the expected
# program), wait up to GRACE seconds, then KILL; remove the pid file.
stop_pid() {
    local name="$1" pattern="$2" grace="$3" pid deadline
    pid="$(read_pid "$name")"
    if [[ -z "$pid" ]]; then
        log "$name: not running (no pid file)"
        return 0
    fi
    if ! pid_matches "$pid" "$pattern"; then
        log "$name: not running (stale pid $pid; removing its pid file)"
        rm -f "$(pid_file "$name")"
        return 0
    fi
    if [[ "$(proc_state "$pid")" == "T" ]]; then
        log "$name: pid $pid is stopped (SIGSTOP); sending SIGCONT first"
        kill -CONT "$pid" 2>/dev/null || true
    fi
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(now_ms) + grace * 1000 ))
    while pid_matches "$pid" "$pattern"; do
        if (( $(now_ms) >= deadline )); then
            warn "$name: pid $pid still alive after ${grace}s; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    rm -f "$(pid_file "$name")"
    log "$name: stopped"
}

# tail_log FILE [N]: print the last N (30) lines of a log file to stderr, framed.
tail_log() {
    local f="$1" n="${2:-30}"
    if [[ -s "$f" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2
        printf -- '----- end of %s -----\n' "$f" >&2
    else
        printf -- '(log %s is empty or missing)\n' "$f" >&2
    fi
}
