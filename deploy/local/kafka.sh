#!/usr/bin/env bash
# Single-node KRaft Kafka broker (broker + controller) for the local stack.
#   deploy/local/kafka.sh start|stop|status
#   deploy/local/kafka.sh partitions TOPIC COUNT   (raises a topic's partition count; for tests)
# Jars: fetched once from Maven Central (deploy/local/kafka/pom.xml) into
#   $PARLEY_CACHE_DIR/kafka-<version>/libs. State: $PARLEY_RUN_DIR/kafka/{data,config,cluster.id}.
# Listeners: PLAINTEXT 127.0.0.1:9092, CONTROLLER 127.0.0.1:9093 (PARLEY_KAFKA_PORT and
# PARLEY_KAFKA_CONTROLLER_PORT move them: a second broker, with its own PARLEY_RUN_DIR, for tests).
# Log: .run/logs/kafka.log.
#
# Version: 4.3.1 is the newest whose broker and tools jars are both served, and it was checked with
# kcat on Debian 12's librdkafka 2.0.2 (idempotent producer with acks=all, group consumer with commits).
# PARLEY_KAFKA_VERSION overrides it (the pom's property); PARLEY_KAFKA_HEAP (default "-Xmx512m -Xms256m").
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION="${PARLEY_KAFKA_VERSION:-4.3.1}"
KAFKA_HEAP="${PARLEY_KAFKA_HEAP:--Xmx512m -Xms256m}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${PARLEY_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${PARLEY_KAFKA_CONTROLLER_PORT:-9093}"
BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
START_DEADLINE_S=60
POM="$LOCAL_DIR/kafka/pom.xml"
JAR_DIR="$CACHE_DIR/kafka-$KAFKA_VERSION"
LIBS="$JAR_DIR/libs"
KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONF_DIR="$KAFKA_DIR/config"
SERVER_PROPS="$KAFKA_CONF_DIR/server.properties"
LOG4J_CONF="$KAFKA_CONF_DIR/log4j2.properties"
CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
KAFKA_LOG="$LOG_DIR/kafka.log"
MAIN_CLASS=kafka.Kafka
TOPIC_PARTITIONS=3
TOPICS=(
    customer.created customer.updated
    conversation.opened conversation.closed
    conversation.participant.added conversation.participant.removed
    message.inbound.created message.outbound.created message.updated message.status.updated
    media.uploaded webhook.inbound.received
)

usage() { echo "usage: $0 start|stop|status|partitions TOPIC COUNT" >&2; exit 2; }

require_java() {
    command -v java >/dev/null 2>&1 || die "java not found (Kafka $KAFKA_VERSION needs Java >= 17; run deploy/local/install.sh)"
    local v major
    v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    major="${v%%.*}"
    [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$v")"
    [[ "$major" =~ ^[0-9]+$ ]] || die "could not read the Java version from 'java -version' (got '$v')"
    (( major >= 17 )) || die "java $v is too old: Kafka $KAFKA_VERSION's broker needs Java >= 17 (install default-jdk-headless or openjdk-17-jdk-headless)"
}

# Fetch the broker's jars into the cache once per version (a marker file proves a complete copy).
fetch_jars() {
    if [[ -f "$JAR_DIR/.complete" ]] && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; it fetches the Kafka jars (run deploy/local/install.sh)"
    log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS (once)"
    mkdir -p "$JAR_DIR"
    local tmp="$JAR_DIR/libs.tmp.$$" t0
    t0=$(now_ms)
    rm -rf "$tmp"
    if ! mvn -q -B -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
            >"$JAR_DIR/mvn.log" 2>&1; then
        tail_log "$JAR_DIR/mvn.log" 40
        rm -rf "$tmp"
        die "maven could not fetch the Kafka $KAFKA_VERSION jars (full output: $JAR_DIR/mvn.log)"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "maven finished but $tmp has no kafka_2.13-$KAFKA_VERSION.jar"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    touch "$JAR_DIR/.complete"
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $(( ($(now_ms) - t0) / 1000 )) s"
}

write_config() {
    mkdir -p "$KAFKA_CONF_DIR" "$KAFKA_DATA"
    cat >"$SERVER_PROPS.tmp" <<EOF
# Written by deploy/local/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=$TOPIC_PARTITIONS
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=134217728
EOF
    mv "$SERVER_PROPS.tmp" "$SERVER_PROPS"
    cat >"$LOG4J_CONF" <<'EOF'
# Written by deploy/local/kafka.sh. Everything goes to stderr, which the script sends to .run/logs/kafka.log.
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.err.ref = STDERR
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF
}

# kafka_java MAIN ARGS...: run a Kafka main class on the cached jars (tools: small heap).
kafka_java() {
    java -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONF" -cp "$LIBS/*" "$@"
}

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
new_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" == -* ]] || break
    done
    printf '%s\n' "$id"
}

format_storage() {
    local meta="$KAFKA_DATA/meta.properties" id
    if [[ -f "$meta" ]]; then
        id="$(sed -n 's/^cluster.id=//p' "$meta")"
        if [[ -n "$id" && "$(cat "$CLUSTER_ID_FILE" 2>/dev/null || true)" != "$id" ]]; then
            printf '%s\n' "$id" >"$CLUSTER_ID_FILE"
        fi
        return 0
    fi
    if [[ -s "$CLUSTER_ID_FILE" ]]; then
        id="$(cat "$CLUSTER_ID_FILE")"
    else
        id="$(new_cluster_id)"
        printf '%s\n' "$id" >"$CLUSTER_ID_FILE"
    fi
    log "formatting storage $KAFKA_DATA (cluster id $id)"
    if ! kafka_java kafka.tools.StorageTool format -t "$id" -c "$SERVER_PROPS" --ignore-formatted \
            >>"$KAFKA_LOG" 2>&1; then
        tail_log "$KAFKA_LOG"
        die "formatting Kafka storage in $KAFKA_DATA failed (see $KAFKA_LOG)"
    fi
}

broker_answers() { kcat -b "$BOOTSTRAP" -L -m 3 >/dev/null 2>&1; }

# wait_ready PID: until the broker answers metadata requests, or it dies, or the deadline passes.
wait_ready() {
    local pid="$1" deadline
    deadline=$(( $(now_ms) + START_DEADLINE_S * 1000 ))
    until broker_answers; do
        if ! pid_matches "$pid" "$MAIN_CLASS"; then
            tail_log "$KAFKA_LOG"
            rm -f "$(pid_file kafka)"
            die "the Kafka broker (pid $pid) exited during start-up (see $KAFKA_LOG)"
        fi
        if (( $(now_ms) >= deadline )); then
            tail_log "$KAFKA_LOG"
            die "the Kafka broker (pid $pid) did not answer on $BOOTSTRAP within ${START_DEADLINE_S} s (see $KAFKA_LOG)"
        fi
        sleep 0.3
    done
}

# existing_topics: names of the topics the broker has, one a line, with their partition counts.
existing_topics() {
    kcat -b "$BOOTSTRAP" -L -m 10 2>/dev/null \
        | sed -n 's/^ *topic "\([^"]*\)" with \([0-9]*\) partitions.*/\1 \2/p'
}

ensure_topics() {
    local have missing=() t n pids=() rc=0 i
    have="$(existing_topics)"
    for t in "${TOPICS[@]}"; do
        n="$(awk -v t="$t" '$1 == t {print $2}' <<<"$have")"
        if [[ -z "$n" ]]; then
            missing+=("$t")
        elif [[ "$n" != "$TOPIC_PARTITIONS" ]]; then
            warn "topic $t has $n partitions, not $TOPIC_PARTITIONS (left as it is; delete .run/kafka to start over)"
        fi
    done
    if (( ${#missing[@]} == 0 )); then
        log "all ${#TOPICS[@]} topics present"
        return 0
    fi
    log "creating ${#missing[@]} topic(s): ${missing[*]}"
    local tmpd
    tmpd="$(mktemp -d)"
    # one JVM per topic, a few at a time (TopicCommand creates a single topic per run)
    for i in "${!missing[@]}"; do
        t="${missing[$i]}"
        kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
            --topic "$t" --partitions "$TOPIC_PARTITIONS" --replication-factor 1 >"$tmpd/$t.out" 2>&1 &
        pids+=("$!:$t")
        if (( ${#pids[@]} >= 4 )); then
            for p in "${pids[@]}"; do
                if ! wait "${p%%:*}"; then rc=1; warn "creating topic ${p#*:} failed:"; cat "$tmpd/${p#*:}.out" >&2; fi
            done
            pids=()
        fi
    done
    for p in "${pids[@]}"; do
        if ! wait "${p%%:*}"; then rc=1; warn "creating topic ${p#*:} failed:"; cat "$tmpd/${p#*:}.out" >&2; fi
    done
    rm -rf "$tmpd"
    (( rc == 0 )) || die "could not create all topics on $BOOTSTRAP"
    # the metadata the services will see
    have="$(existing_topics)"
    for t in "${TOPICS[@]}"; do
        awk -v t="$t" '$1 == t {f=1} END {exit !f}' <<<"$have" || die "topic $t still missing after creation"
    done
    log "all ${#TOPICS[@]} topics present"
}

cmd_start() {
    take_lock kafka
    command -v kcat >/dev/null 2>&1 || die "kcat not found (used to check the broker; run deploy/local/install.sh)"
    local t0 pid
    t0=$(now_ms)
    pid="$(running_pid kafka "$MAIN_CLASS")"
    if [[ -n "$pid" ]]; then
        if [[ "$(proc_state "$pid")" == "T" ]]; then
            warn "Kafka broker pid $pid is paused (SIGSTOP); leaving it so (kill -CONT $pid to resume)"
            return 0
        fi
        log "Kafka already running (pid $pid) on $BOOTSTRAP"
        require_java
        fetch_jars
        wait_ready "$pid"
        ensure_topics
        return 0
    fi
    require_java
    fetch_jars
    if port_in_use "$KAFKA_PORT" || port_in_use "$CONTROLLER_PORT"; then
        die "port $KAFKA_PORT or $CONTROLLER_PORT on $KAFKA_HOST is in use by a process this script did not start (no live pid in $(pid_file kafka)); stop it first"
    fi
    mkdir -p "$KAFKA_DIR"
    write_config
    format_storage
    log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (log $KAFKA_LOG)"
    printf '\n===== kafka.sh start %s (Kafka %s) =====\n' "$(date -u +%FT%TZ)" "$KAFKA_VERSION" >>"$KAFKA_LOG"
    # setsid: own session, so a terminal's ^C does not reach it; exec keeps the java pid as $!.
    # shellcheck disable=SC2086
    (
        cd "$KAFKA_DIR"
        exec setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
            -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J_CONF" \
            -cp "$LIBS/*" "$MAIN_CLASS" "$SERVER_PROPS"
    ) </dev/null >>"$KAFKA_LOG" 2>&1 {PARLEY_LOCK_FD}>&- &
    pid=$!
    printf '%s\n' "$pid" >"$(pid_file kafka)"
    sleep 0.2
    pid_matches "$pid" "$MAIN_CLASS" || { tail_log "$KAFKA_LOG"; rm -f "$(pid_file kafka)"; die "the Kafka broker exited at once (see $KAFKA_LOG)"; }
    wait_ready "$pid"
    log "Kafka answering on $BOOTSTRAP (pid $pid) after $(( ($(now_ms) - t0) / 1000 )) s"
    ensure_topics
    log "ready in $(( ($(now_ms) - t0) / 1000 )) s"
}

cmd_stop() {
    take_lock kafka
    # a controlled shutdown of a single node takes a few seconds
    stop_pid kafka "$MAIN_CLASS" 30
}

cmd_status() {
    local pid
    pid="$(running_pid kafka "$MAIN_CLASS")"
    if [[ -z "$pid" ]]; then
        log "Kafka not running"
        return 3
    fi
    if [[ "$(proc_state "$pid")" == "T" ]]; then
        log "Kafka pid $pid is paused (SIGSTOP)"
    elif broker_answers; then
        log "Kafka running (pid $pid) on $BOOTSTRAP"
    else
        log "Kafka pid $pid is alive but does not answer on $BOOTSTRAP"
        return 1
    fi
}

# partitions TOPIC COUNT: the topic gets COUNT partitions (Kafka can add partitions, never remove).
cmd_partitions() {
    [[ $# -eq 2 && "$2" =~ ^[0-9]+$ ]] || usage
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --alter \
        --topic "$1" --partitions "$2" >>"$KAFKA_LOG" 2>&1 ||
        die "could not give $1 $2 partitions (see $KAFKA_LOG)"
}

[[ $# -ge 1 ]] || usage
case "${1:-}" in
    start) [[ $# -eq 1 ]] || usage; cmd_start ;;
    partitions) shift; cmd_partitions "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
esac
