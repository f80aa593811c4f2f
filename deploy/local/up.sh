#!/usr/bin/env bash
# Bring up the whole local stack: missing Debian packages, build, PostgreSQL, Kafka, the six services.
# Idempotent: parts already running (live pid file) are left alone. Stop with deploy/local/down.sh.
# Environment: see svc.sh (PARLEY_* values set by the caller pass through to the binaries);
# PARLEY_SKIP_INSTALL=1 skips the package check, PARLEY_SKIP_BUILD=1 skips `make all`.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$(now_ms)
step() { log "== $*"; }

if [[ "${PARLEY_SKIP_INSTALL:-0}" != 1 ]]; then
    step "system packages"
    "$LOCAL_DIR/install.sh" || die "installing system packages failed (deploy/local/install.sh)"
fi
if [[ "${PARLEY_SKIP_BUILD:-0}" != 1 ]]; then
    step "build (make -C $ROOT_DIR all)"
    make -C "$ROOT_DIR" all || die "the build failed (make -C $ROOT_DIR all)"
fi
step "postgres"
"$LOCAL_DIR/pg.sh" start || die "PostgreSQL did not start (log: $LOG_DIR/postgres.log)"
step "kafka"
"$LOCAL_DIR/kafka.sh" start || die "Kafka did not start (log: $LOG_DIR/kafka.log)"
step "services"
"$LOCAL_DIR/svc.sh" start all || die "the services did not all become ready (logs: $LOG_DIR/<name>.log)"

log "local stack up in $(( ($(now_ms) - t0) / 1000 )) s"
echo
echo "  gateway:  ${PARLEY_PUBLIC_URL:-http://127.0.0.1:${PARLEY_GATEWAY_PORT:-8000}}"
echo "  API key:  ${PARLEY_BOOTSTRAP_API_KEY:-dev-api-key}"
echo "  logs:     $LOG_DIR   stop: deploy/local/down.sh"
