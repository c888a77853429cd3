#!/bin/sh
# Run once by the postgres image when it creates the primary: let the replica stream from it.
set -eu
echo "host replication all all trust" >>"$PGDATA/pg_hba.conf"
