#!/bin/sh
# The replica: clone the primary once with pg_basebackup -R (which configures streaming), then serve.
# Writes on it fail with "read-only transaction".
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready --host "$PRIMARY_HOST" --username postgres --quiet; do sleep 1; done
  pg_basebackup --host "$PRIMARY_HOST" --username postgres --pgdata "$PGDATA" \
    --write-recovery-conf --wal-method stream --checkpoint fast
fi
exec postgres
