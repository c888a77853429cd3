#!/usr/bin/env bash
# Make (idempotently) a PostgreSQL streaming replica of the local server, for tests.
#
# Debian/Ubuntu (postgresql-common) only, run as root. The primary is the running server on
# 127.0.0.1:$PG_PRIMARY_PORT (default 5432); the replica is the cluster "<major>/replica" on
# 127.0.0.1:$PG_REPLICA_PORT (default 5433), where <major> is the primary's major version.
#
# - fresh machine: allow replication connections in the primary's pg_hba.conf (reload), create the
#   cluster, replace its data with a pg_basebackup of the primary (physical slot "pg_replica_sh", so
#   a replica stopped for a while can still catch up) and start it;
# - replica already there and healthy (running, or stopped, e.g. after a reboot): (start it and) check it;
# - replica broken (not in recovery, empty data dir, other port, copy of another primary, cannot catch
#   up): drop and recreate it.
# In all cases wait until the replica has replayed a fresh write on the primary, then print one line
# "replica ready on 127.0.0.1:<port>". Tool output goes to $PG_REPLICA_LOG (default /tmp/pg-replica.log);
# on failure a one-line message goes to stderr and the exit status is non-zero.
#
# Environment: PG_PRIMARY_PORT (5432), PG_REPLICA_PORT (5433), PG_REPLICA_TIMEOUT (seconds, 30),
# PG_REPLICA_LOG (/tmp/pg-replica.log).
#
# Note: the replication slot makes the primary keep WAL for the replica while it is down; after
# `pg_dropcluster <major> replica` by hand, also drop it on the primary:
#   psql -h 127.0.0.1 -U postgres -c "select pg_drop_replication_slot('pg_replica_sh')"

set -Eeuo pipefail

readonly HOST=127.0.0.1
readonly PRIMARY_PORT="${PG_PRIMARY_PORT:-5432}"
readonly REPLICA_PORT="${PG_REPLICA_PORT:-5433}"
readonly TIMEOUT="${PG_REPLICA_TIMEOUT:-30}"
readonly LOG="${PG_REPLICA_LOG:-/tmp/pg-replica.log}"
readonly CLUSTER=replica
readonly SLOT=pg_replica_sh
readonly ME="${0##*/}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}"

# Exit status 99 means "already reported": a failure inside $(...) is reported once, by the subshell.
die() {
    echo "${ME}: $*" >&2
    exit 99
}
on_error() {
    local rc=$1 line=$2 cmd=$3
    if [[ ${rc} -ne 99 ]]; then
        echo "${ME}: unexpected failure (exit ${rc}) at line ${line}: ${cmd} (see ${LOG})" >&2
    fi
    exit 99
}
trap 'on_error $? ${LINENO} "${BASH_COMMAND}"' ERR

log() {
    echo "[$(date '+%F %T.%3N')] $*" >>"${LOG}"
}

# Run a command quietly: its output goes to the log. Fd 9 (the lock) is closed so that a server
# started by the command does not hold the lock forever.
quiet() {
    log "\$ $*"
    "$@" >>"${LOG}" 2>&1 9>&-
}

as_postgres() {
    if [[ $(id -un) == postgres ]]; then
        (cd / && "$@")
    else
        (cd / && runuser -u postgres -- "$@")
    fi
}

# psql PORT SQL...: one transaction per SQL argument, unaligned tuples-only output.
sql() {
    local port=$1
    shift
    local args=()
    local query
    for query in "$@"; do
        args+=(-c "${query}")
    done
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "${HOST}" -p "${port}" -U postgres -d postgres "${args[@]}" 2>>"${LOG}"
}

[[ ${PRIMARY_PORT} =~ ^[0-9]+$ && ${REPLICA_PORT} =~ ^[0-9]+$ ]] || die "ports must be numbers"
[[ ${TIMEOUT} =~ ^[0-9]+$ ]] || die "PG_REPLICA_TIMEOUT must be a number of seconds"
[[ ${PRIMARY_PORT} != "${REPLICA_PORT}" ]] || die "PG_PRIMARY_PORT and PG_REPLICA_PORT are both ${REPLICA_PORT}"
for tool in psql pg_lsclusters pg_createcluster pg_dropcluster pg_ctlcluster runuser flock; do
    command -v "${tool}" >/dev/null || die "${tool} not found (needs Debian's postgresql-common, util-linux)"
done
# Serialize concurrent runs.
exec 9>>"${LOG}.lock" || die "cannot write the lock file ${LOG}.lock"
flock -w $((TIMEOUT * 3 + 60)) 9 || die "another ${ME} is still running (lock ${LOG}.lock)"
: >"${LOG}" 2>/dev/null || die "cannot write the log file ${LOG}"

# ---------------------------------------------------------------------------------------------- primary

primary_info=$(sql "${PRIMARY_PORT}" "select concat_ws('|', current_setting('server_version_num'),
    current_setting('wal_level'), current_setting('max_wal_senders'), current_setting('hba_file'),
    pg_is_in_recovery(), (select system_identifier from pg_control_system()))") ||
    die "primary not reachable on ${HOST}:${PRIMARY_PORT} as postgres (see ${LOG})"
IFS='|' read -r version_num wal_level max_wal_senders hba_file primary_in_recovery primary_sysid <<<"${primary_info}"

[[ ${version_num} =~ ^[0-9]+$ && ${version_num} -ge 100000 ]] ||
    die "unsupported primary server_version_num '${version_num}' (needs PostgreSQL >= 10)"
readonly VER=$((version_num / 10000))
readonly BINDIR=/usr/lib/postgresql/${VER}/bin
readonly DATADIR=/var/lib/postgresql/${VER}/${CLUSTER}
readonly CONFDIR=/etc/postgresql/${VER}/${CLUSTER}
[[ -x ${BINDIR}/postgres && -x ${BINDIR}/pg_basebackup ]] || die "PostgreSQL ${VER} server binaries not found in ${BINDIR}"
[[ ${primary_in_recovery} == f ]] || die "the server on ${HOST}:${PRIMARY_PORT} is itself a standby"
[[ ${wal_level} == replica || ${wal_level} == logical ]] ||
    die "primary has wal_level=${wal_level}; set it to 'replica' and restart the primary"
[[ ${max_wal_senders} -ge 2 ]] ||
    die "primary has max_wal_senders=${max_wal_senders}; set it to at least 2 and restart the primary"
log "primary ${HOST}:${PRIMARY_PORT}: PostgreSQL ${VER}, wal_level=${wal_level}, max_wal_senders=${max_wal_senders}"

# Replication connections from localhost must be allowed (the "all" database keyword does not cover them).
hba_changed=false
for source in 127.0.0.1/32 ::1/128; do
    pattern="^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+${source//./\\.}[[:space:]]+trust([[:space:]]|$)"
    if ! grep -Eq "${pattern}" "${hba_file}" 2>/dev/null; then
        [[ -w ${hba_file} ]] || die "cannot add replication rules to ${hba_file} (not writable; run as root)"
        if [[ ${hba_changed} == false ]]; then
            # Make sure the file ends with a newline before appending.
            if [[ -s ${hba_file} && -n $(tail -c 1 "${hba_file}") ]]; then
                echo >>"${hba_file}"
            fi
            echo "# Added by ${ME}: streaming replica for tests" >>"${hba_file}"
        fi
        printf 'host    replication     all     %-15s trust\n' "${source}" >>"${hba_file}"
        log "added 'host replication all ${source} trust' to ${hba_file}"
        hba_changed=true
    fi
done
if [[ ${hba_changed} == true ]]; then
    [[ $(sql "${PRIMARY_PORT}" "select pg_reload_conf()") == t ]] || die "could not reload the primary"
fi

# ---------------------------------------------------------------------------------------------- replica

# Prints "status|port|datadir" for our replica cluster, nothing if it does not exist.
replica_cluster() {
    pg_lsclusters -h 2>>"${LOG}" | awk -v ver="${VER}" -v name="${CLUSTER}" \
        '$1 == ver && $2 == name { print $4 "|" $3 "|" $6 }'
}

drop_slot() {
    local deadline=$((SECONDS + 10))
    while [[ $(sql "${PRIMARY_PORT}" "select count(*) from pg_replication_slots where slot_name = '${SLOT}'") != 0 ]]; do
        # The walsender of a just-stopped replica can hold the slot for a moment.
        if sql "${PRIMARY_PORT}" "select pg_terminate_backend(active_pid) from pg_replication_slots
                where slot_name = '${SLOT}' and active_pid is not null" \
            "select pg_drop_replication_slot('${SLOT}')" >/dev/null; then
            log "dropped replication slot ${SLOT} on the primary"
            return 0
        fi
        [[ ${SECONDS} -lt ${deadline} ]] || die "cannot drop the replication slot ${SLOT} on the primary (in use?)"
        sleep 0.2
    done
}

create_replica() {
    log "creating the replica cluster ${VER}/${CLUSTER} on port ${REPLICA_PORT}"
    if [[ -n $(replica_cluster) ]]; then
        quiet pg_dropcluster --stop "${VER}" "${CLUSTER}" || die "could not drop the cluster ${VER}/${CLUSTER} (see ${LOG})"
    fi
    # Leftovers of a cluster removed by hand would make pg_createcluster fail or reuse stale data.
    rm -rf -- "${CONFDIR}" "${DATADIR}"
    drop_slot

    # Replication connections must work (this also waits for the reload of pg_hba.conf to take effect).
    local deadline=$((SECONDS + 10))
    until psql -X -q -A -t "host=${HOST} port=${PRIMARY_PORT} user=postgres replication=true" \
        -c IDENTIFY_SYSTEM >>"${LOG}" 2>&1; do
        [[ ${SECONDS} -lt ${deadline} ]] ||
            die "the primary refuses replication connections from ${HOST} as postgres (check ${hba_file})"
        sleep 0.2
    done

    # --no-sync: initdb's data is replaced right away.
    quiet pg_createcluster -p "${REPLICA_PORT}" -d "${DATADIR}" "${VER}" "${CLUSTER}" -- --no-sync ||
        die "pg_createcluster ${VER} ${CLUSTER} failed (see ${LOG})"
    find "${DATADIR}" -mindepth 1 -delete
    quiet as_postgres "${BINDIR}/pg_basebackup" -h "${HOST}" -p "${PRIMARY_PORT}" -U postgres -D "${DATADIR}" \
        -R -X stream --checkpoint=fast -C -S "${SLOT}" ||
        die "pg_basebackup from ${HOST}:${PRIMARY_PORT} failed (see ${LOG})"
    # Settings copied from the primary's ALTER SYSTEM must not override the replica's own ones.
    if [[ -f ${DATADIR}/postgresql.auto.conf ]]; then
        sed -i -E '/^[[:space:]]*(port|listen_addresses|hot_standby)[[:space:]]*=/d' "${DATADIR}/postgresql.auto.conf"
    fi

    # Same authentication rules as the primary (the tests connect without password).
    install -o postgres -g postgres -m 640 "${hba_file}" "${CONFDIR}/pg_hba.conf"
    # Appended to postgresql.conf, so they win over the settings above and in conf.d/.
    # A hot standby refuses to start if one of the max_* is lower than on the primary.
    {
        echo
        echo "# Added by ${ME}: streaming replica of ${HOST}:${PRIMARY_PORT}"
        echo "port = ${REPLICA_PORT}"
        echo "listen_addresses = '${HOST}'"
        echo "hot_standby = on"
        sql "${PRIMARY_PORT}" "select name || ' = ' || setting from pg_settings
            where name in ('max_connections', 'max_worker_processes', 'max_wal_senders',
                           'max_prepared_transactions', 'max_locks_per_transaction') order by name"
    } >>"${CONFDIR}/postgresql.conf"
    log "replica ${VER}/${CLUSTER} created"
}

start_replica() {
    quiet pg_ctlcluster --skip-systemctl-redirect "${VER}" "${CLUSTER}" start
}

# Checks the replica answers, is in recovery and is a copy of our primary; waits for it to accept
# connections (a standby accepts them once it has reached a consistent state).
replica_healthy() {
    local deadline=$((SECONDS + TIMEOUT)) state
    while :; do
        if state=$(sql "${REPLICA_PORT}" "select concat_ws('|', pg_is_in_recovery(), system_identifier) from pg_control_system()"); then
            if [[ ${state} == "t|${primary_sysid}" ]]; then
                return 0
            fi
            log "replica on port ${REPLICA_PORT} is not a standby of the primary: '${state}'"
            return 1
        fi
        if [[ ${SECONDS} -ge ${deadline} ]]; then
            log "replica on port ${REPLICA_PORT} not answering after ${TIMEOUT} s"
            return 1
        fi
        sleep 0.2
    done
}

# Makes a fresh write on the primary and waits until the replica has replayed it.
replica_caught_up() {
    local lsn deadline=$((SECONDS + TIMEOUT))
    # Two -c: the xid is committed (and the commit record flushed) before the LSN is read.
    lsn=$(sql "${PRIMARY_PORT}" "select txid_current()" "select pg_current_wal_lsn()" | tail -n 1)
    [[ -n ${lsn} ]] || die "could not write on the primary (see ${LOG})"
    until [[ $(sql "${REPLICA_PORT}" "select coalesce(pg_last_wal_replay_lsn() >= '${lsn}', false)") == t ]]; do
        if [[ ${SECONDS} -ge ${deadline} ]]; then
            log "replica did not replay ${lsn} within ${TIMEOUT} s"
            return 1
        fi
        sleep 0.1
    done
}

# Returns 0 if an existing replica was started / found healthy, 1 if it must be (re)created.
existing_replica_usable() {
    local cluster status port datadir
    cluster=$(replica_cluster)
    if [[ -z ${cluster} ]]; then
        log "no cluster ${VER}/${CLUSTER}"
        return 1
    fi
    IFS='|' read -r status port datadir <<<"${cluster}"
    log "existing cluster ${VER}/${CLUSTER}: status=${status} port=${port} datadir=${datadir}"
    if [[ ${port} != "${REPLICA_PORT}" ]]; then
        log "it is on port ${port}, not ${REPLICA_PORT}"
        return 1
    fi
    # standby.signal: PostgreSQL >= 12, recovery.conf before.
    if [[ ! -f ${datadir}/PG_VERSION || ! (-f ${datadir}/standby.signal || -f ${datadir}/recovery.conf) ]]; then
        log "its data directory ${datadir} is empty or not a standby"
        return 1
    fi
    if [[ ${status} != online* ]]; then
        if ! start_replica; then
            log "it does not start"
            return 1
        fi
    fi
    replica_healthy
}

created=false
if ! existing_replica_usable; then
    create_replica
    created=true
    start_replica || die "the replica ${VER}/${CLUSTER} does not start (see ${LOG} and its server log)"
    replica_healthy || die "the new replica on ${HOST}:${REPLICA_PORT} is not a working standby (see ${LOG})"
fi
if ! replica_caught_up; then
    [[ ${created} == false ]] || die "the new replica did not catch up with the primary within ${TIMEOUT} s (see ${LOG})"
    log "the existing replica does not catch up, recreating it"
    create_replica
    start_replica || die "the replica ${VER}/${CLUSTER} does not start (see ${LOG} and its server log)"
    replica_healthy || die "the new replica on ${HOST}:${REPLICA_PORT} is not a working standby (see ${LOG})"
    replica_caught_up || die "the new replica did not catch up with the primary within ${TIMEOUT} s (see ${LOG})"
fi

echo "replica ready on ${HOST}:${REPLICA_PORT}"
