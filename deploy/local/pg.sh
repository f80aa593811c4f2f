#!/usr/bin/env bash
# Private PostgreSQL cluster for the local stack.
#   deploy/local/pg.sh start|stop|status
# Data in $PARLEY_RUN_DIR/pg/data, socket in $PARLEY_RUN_DIR/pg/sock, TCP only on 127.0.0.1:55432.
# As root, the server runs as the `postgres` OS user. The superuser role is `postgres` (trust over the
# unix socket only); the app role `parley` (password `parley`) owns the six service databases.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT=55432
PG_HOST=127.0.0.1
PG_DIR="$RUN_DIR/pg"
PG_DATA="$PG_DIR/data"
PG_SOCK="$PG_DIR/sock"
PG_LOG="$LOG_DIR/postgres.log"
PG_USER_OS=postgres
DATABASES=(parley_gateway parley_customers parley_conversations parley_messaging parley_media parley_inbound)

usage() { echo "usage: $0 start|stop|status" >&2; exit 2; }

# Newest installed server version: /usr/lib/postgresql/<v>/bin/initdb.
find_pg_bin() {
    local d best=""
    while IFS= read -r d; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && best="$d"
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [[ -n "$best" ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin (run deploy/local/install.sh, which installs the 'postgresql' package)"
    printf '%s\n' "$best"
}
PG_BIN="$(find_pg_bin)"

# as_pg CMD...: run a server-side command as the cluster owner.
as_pg() {
    if is_root; then
        runuser -u "$PG_USER_OS" -- "$@"
    else
        "$@"
    fi
}

# psql_admin ARGS...: superuser psql over the private socket.
psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres "$@"
}

# Make every ancestor of PG_DIR traversable by the postgres user (e.g. a checkout under /root, 0700).
ensure_traversable() {
    is_root || return 0
    local d="$PG_DIR" dirs=() i
    while [[ "$d" != "/" ]]; do
        d="$(dirname "$d")"
        dirs=("$d" "${dirs[@]+"${dirs[@]}"}")      # outermost first
    done
    for i in "${!dirs[@]}"; do
        d="${dirs[$i]}"
        if ! runuser -u "$PG_USER_OS" -- test -x "$d" 2>/dev/null; then
            if command -v setfacl >/dev/null 2>&1 && setfacl -m "u:$PG_USER_OS:x" "$d" 2>/dev/null; then
                log "granted the '$PG_USER_OS' user traverse (x) permission on $d (ACL) so the server can reach $PG_DIR"
            elif chmod o+x "$d"; then
                log "added o+x (traverse only, not read) to $d so the '$PG_USER_OS' user can reach $PG_DIR"
            else
                die "the '$PG_USER_OS' user cannot traverse $d and it could not be fixed; set PARLEY_RUN_DIR to a directory it can reach"
            fi
        fi
    done
}

prepare_dirs() {
    if is_root; then
        id "$PG_USER_OS" >/dev/null 2>&1 \
            || die "OS user '$PG_USER_OS' does not exist (it comes with the 'postgresql' package: run deploy/local/install.sh)"
    fi
    mkdir -p "$PG_DATA" "$PG_SOCK"
    touch "$PG_LOG"
    if is_root; then
        chown -R "$PG_USER_OS:" "$PG_DIR"
        chown "$PG_USER_OS:" "$PG_LOG"
        ensure_traversable
    fi
    chmod 700 "$PG_DATA"
}

init_cluster() {
    if [[ -f "$PG_DATA/PG_VERSION" ]]; then
        local have want
        have="$(cat "$PG_DATA/PG_VERSION")"
        want="$(basename "$(dirname "$PG_BIN")")"
        if [[ "$have" != "$want" ]]; then
            die "$PG_DATA was initialised by PostgreSQL $have but the newest installed server is $want; remove $PG_DATA (loses local data) or install postgresql-$have"
        fi
        return 0
    fi
    log "initialising cluster in $PG_DATA ($PG_BIN)"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1; then
        tail_log "$PG_LOG"
        die "initdb failed for $PG_DATA (see $PG_LOG)"
    fi
}

write_config() {
    # Regenerated on every start; postgresql.conf only includes it.
    local conf="$PG_DATA/parley.conf" tmp
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
# Written by deploy/local/pg.sh on every start; edits are lost.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 256MB
work_mem = 8MB
maintenance_work_mem = 64MB
effective_cache_size = 1GB
max_wal_size = 1GB
# durability stays at PostgreSQL's defaults: the stack is tested for crash safety
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = 'scram-sha-256'
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
    install -m 600 "$tmp" "$conf"
    rm -f "$tmp"
    if ! grep -q "^include_if_exists = 'parley.conf'" "$PG_DATA/postgresql.conf"; then
        printf "\n# local-stack settings (deploy/local/pg.sh)\ninclude_if_exists = 'parley.conf'\n" >>"$PG_DATA/postgresql.conf"
    fi
    cat >"$PG_DATA/pg_hba.conf" <<EOF
# Written by deploy/local/pg.sh on every start; edits are lost.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
EOF
    if is_root; then chown "$PG_USER_OS:" "$conf" "$PG_DATA/pg_hba.conf" "$PG_DATA/postgresql.conf"; fi
    chmod 600 "$PG_DATA/pg_hba.conf"
}

server_running() { as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; }

record_pid() {
    local pid
    pid="$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9')"
    [[ -n "$pid" ]] || die "server is running but $PG_DATA/postmaster.pid has no pid"
    printf '%s\n' "$pid" >"$(pid_file postgres)"
    printf '%s\n' "$pid"
}

ensure_role_and_databases() {
    local db out
    if ! out="$(psql_admin -d postgres 2>&1 <<'EOF'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parley') THEN
    CREATE ROLE parley LOGIN PASSWORD 'parley';
  ELSE
    ALTER ROLE parley LOGIN PASSWORD 'parley';
  END IF;
END
$$;
EOF
    )"; then
        die "could not create/update role parley: $out"
    fi
    for db in "${DATABASES[@]}"; do
        if [[ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]]; then
            psql_admin -d postgres -c "CREATE DATABASE $db OWNER parley" \
                || die "could not create database $db"
            log "created database $db (owner parley)"
        else
            psql_admin -d postgres -c "ALTER DATABASE $db OWNER TO parley" >/dev/null \
                || die "could not set the owner of database $db"
        fi
        # services create their tables in public; since PG 15 only the owner may, so give it to parley
        psql_admin -d "$db" -c "ALTER SCHEMA public OWNER TO parley" >/dev/null \
            || die "could not give schema public of $db to parley"
    done
    # the app's own check: a password login over TCP, as the services will do
    if ! out="$(PGPASSWORD=parley "$PG_BIN/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U parley -d parley_gateway -tAc 'SELECT 1' 2>&1)" \
            || [[ "$out" != "1" ]]; then
        die "role parley cannot log in over TCP at $PG_HOST:$PG_PORT: $out"
    fi
}

cmd_start() {
    take_lock pg
    prepare_dirs
    init_cluster
    write_config
    local pid
    if server_running; then
        pid="$(record_pid)"
        log "postgres already running (pid $pid) on $PG_HOST:$PG_PORT"
        # pick up changed settings without a restart (those that need one are only logged)
        no_lock_fd as_pg "$PG_BIN/pg_ctl" reload -D "$PG_DATA" >/dev/null 2>&1 || true
    else
        rm -f "$(pid_file postgres)"
        if port_in_use "$PG_PORT"; then
            die "port $PG_HOST:$PG_PORT is already in use by another process (not this cluster in $PG_DATA); stop it first"
        fi
        log "starting postgres on $PG_HOST:$PG_PORT (data $PG_DATA, log $PG_LOG)"
        if ! no_lock_fd as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s >/dev/null 2>&1; then
            tail_log "$PG_LOG"
            die "postgres did not start within 60 s (see $PG_LOG)"
        fi
        pid="$(record_pid)"
        log "postgres started (pid $pid)"
    fi
    ensure_role_and_databases
    log "ready: postgresql://parley:parley@$PG_HOST:$PG_PORT/<db> (databases: ${DATABASES[*]})"
}

cmd_stop() {
    take_lock pg
    if [[ -f "$PG_DATA/PG_VERSION" ]] && server_running; then
        log "stopping postgres (pg_ctl stop -m fast)"
        if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 -s; then
            tail_log "$PG_LOG"
            die "postgres did not stop within 60 s"
        fi
        log "postgres stopped"
    else
        log "postgres not running"
    fi
    rm -f "$(pid_file postgres)"
}

cmd_status() {
    if [[ -f "$PG_DATA/PG_VERSION" ]] && server_running; then
        log "postgres running (pid $(record_pid)) on $PG_HOST:$PG_PORT"
    else
        log "postgres not running"
        return 3
    fi
}

[[ $# -eq 1 ]] || usage
case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
esac
