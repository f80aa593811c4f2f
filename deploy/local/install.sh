#!/usr/bin/env bash
# Install the Debian packages the local stack, the build and the tests need, if any are missing.
# Checks each with dpkg-query first; runs apt-get update + install only when something is missing.
# Meant for Debian 12 (bookworm) as root (or with sudo).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
    # build
    build-essential gcc make pkg-config clang libclang-rt-14-dev
    libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev librdkafka-dev libpq-dev libssl-dev libcmocka-dev
    # database
    postgresql postgresql-contrib
    # Kafka broker: fetched by maven, run by java (>= 17; see below)
    maven ca-certificates
    # scripts and tests
    python3 python3-pytest kcat wrk curl procps util-linux coreutils
    python3-yaml python3-jsonschema python3-pip
    # media-svc's virus-scanning tests run Debian's clamd (with a one-signature test database)
    clamav-daemon
)
JAVA_PACKAGE=default-jdk-headless

installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

# An existing java >= 17 is enough; otherwise Debian's default JDK (17 on bookworm).
java_ok() {
    command -v java >/dev/null 2>&1 || return 1
    local v major
    v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    major="${v%%.*}"
    [[ "$major" =~ ^[0-9]+$ ]] && (( major >= 17 ))
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: install.sh supports Debian/Ubuntu only; install these by hand: ${PACKAGES[*]} $JAVA_PACKAGE"

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if ! java_ok && ! installed "$JAVA_PACKAGE"; then
    missing+=("$JAVA_PACKAGE")
fi

if (( ${#missing[@]} == 0 )); then
    log "all required packages are installed"
    exit 0
fi

log "missing packages: ${missing[*]}"
SUDO=()
if ! is_root; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install as root: apt-get install ${missing[*]}"
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
log "apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update \
    || die "apt-get update failed (network or apt sources?)"
log "apt-get install ${missing[*]}"
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${missing[@]}"; then
    die "apt-get install failed for: ${missing[*]}"
fi

still=()
for p in "${missing[@]}"; do
    installed "$p" || still+=("$p")
done
(( ${#still[@]} == 0 )) || die "still not installed after apt-get: ${still[*]}"
java_ok || die "java >= 17 still not found after installing $JAVA_PACKAGE"
log "installed: ${missing[*]}"
