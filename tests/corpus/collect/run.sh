#!/usr/bin/env bash
# Regenerates ../driver_queries.jsonl: starts a throwaway PostgreSQL 15 cluster with
# log_statement=all, loads sample/, runs every client script below against it as
# agent_wasser, then turns the server log into JSON lines (extract.py).
# log_min_duration_statement=0 (MIN_DURATION) adds `duration:` lines, the only place the
# log shows empty queries and Parse messages that were never executed; MIN_DURATION=-1
# gives a log_statement-only capture. Not used by the test suite. Needs: postgres binaries, psql, python3, node, javac,
# libpostgresql-jdbc-java. Run as root (server runs as OS user postgres).
#   WORK=/work/scratch/corpus bash tests/corpus/collect/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
WORK=${WORK:-/work/scratch/corpus}
PORT=${PORT:-55432}
OUT=${OUT:-$(cd "$HERE/.." && pwd)/driver_queries.jsonl}
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
mkdir -p "$WORK"
export PYTHONDONTWRITEBYTECODE=1

# --- client toolchains (skipped when already present) ---------------------------
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q 'psycopg[binary]==3.3.9' 'sqlalchemy==2.1.9' 'asyncpg==0.32.0' \
    'psycopg2-binary==2.9.13' greenlet
fi
if [ ! -d "$WORK/node/node_modules/pg-cursor" ]; then
  mkdir -p "$WORK/node" && (cd "$WORK/node" && npm init -y >/dev/null && npm install -s pg@8.23.1 pg-cursor@2.22.1)
fi
[ -f "$JAR" ] || apt-get install -y libpostgresql-jdbc-java
mkdir -p "$WORK/java" && javac -d "$WORK/java" -cp "$JAR" "$HERE/JdbcClient.java"
cp "$HERE/node_client.js" "$WORK/node/"

# --- throwaway cluster -----------------------------------------------------------
PGDIR=$(mktemp -d /tmp/unscharf-corpus.XXXXXX)
chown postgres: "$PGDIR"
DATA=$PGDIR/data
LOG=$PGDIR/server.log
cleanup() {
  runuser -u postgres -- pg_ctl -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  [ -f "$LOG" ] && cp "$LOG" "$WORK/server.log"
  rm -rf "$PGDIR"
}
trap cleanup EXIT
runuser -u postgres -- initdb -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
cat > "$DATA/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
host  all all ::1/128 trust
HBA
cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDIR'
password_encryption = 'scram-sha-256'
log_statement = 'all'
log_min_duration_statement = ${MIN_DURATION:-0}
logging_collector = off
log_line_prefix = '%m [%p] app=%a user=%u '
log_timezone = 'UTC'
CONF
runuser -u postgres -- pg_ctl -D "$DATA" -l "$LOG" -w start >/dev/null

export PGHOST=127.0.0.1 PGPORT=$PORT
PGAPPNAME=corpus-load psql -X -q -U postgres -d postgres -c 'CREATE DATABASE crm'
for f in schema data roles; do
  PGAPPNAME=corpus-load psql -X -q -v ON_ERROR_STOP=1 -U postgres -d crm -f "$REPO/sample/$f.sql" >/dev/null
done

# --- clients, one after another; each appends "epoch<TAB>client<TAB>step" to MARKERS
export MARKERS=$WORK/markers.tsv PORT
: > "$MARKERS"
export MARK="$HERE/mark.sh"
PGAPPNAME=psql PGPASSWORD=wasser psql -X -U agent_wasser -d crm -f "$HERE/psql_session.sql" > "$WORK/psql.out" 2>&1
PY=$WORK/venv/bin/python
$PY "$HERE/psycopg_client.py"
$PY "$HERE/sqlalchemy_client.py" sqlalchemy-psycopg2
$PY "$HERE/sqlalchemy_client.py" sqlalchemy-psycopg
$PY "$HERE/sqlalchemy_client.py" sqlalchemy-asyncpg
$PY "$HERE/asyncpg_client.py"
(cd "$WORK/node" && node node_client.js)
java -cp "$WORK/java:$JAR" JdbcClient

runuser -u postgres -- pg_ctl -D "$DATA" -m fast -w stop >/dev/null
cp "$LOG" "$WORK/server.log"
python3 "$HERE/extract.py" "$WORK/server.log" "$MARKERS" > "$OUT"
echo "wrote $OUT ($(wc -l < "$OUT") statements)"
