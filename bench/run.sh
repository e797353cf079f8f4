#!/usr/bin/env bash
# Throughput of unscharf against direct Postgres and PgBouncer (session mode), measured in one
# run on a throwaway Postgres 15 cluster, so the three targets share the machine's current load.
#
#   bench/run.sh [--seconds N] [--rounds R] [--clients C] [--threads J] [--scale S] [--no-build]
#
# Prints median tps per mode and target plus ratios; raw results go to bench/results/*.csv.
# Workloads are functions named workload_*; add one and list it in WORKLOADS to extend the run.
set -euo pipefail

SECONDS_PER_RUN=10 ROUNDS=3 CLIENTS=8 THREADS=2 SCALE=10 BUILD=1
usage() { sed -n '5p' "$0" | sed 's/^#  *//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --rounds)  ROUNDS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --scale)   SCALE=$2; shift 2 ;;
    --no-build) BUILD=""; shift ;;   # use target/release/unscharf as it is
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
for v in SECONDS_PER_RUN ROUNDS CLIENTS THREADS SCALE; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "${v}: expected a positive integer, got '${!v}'" >&2; exit 2; }
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
WORKLOADS=(pgbench_select)   # later: masked_select, streaming_1m, idle_sessions_memory
TARGETS=(direct pgbouncer unscharf)
MODES=(simple extended prepared)

# Stray libpq variables would silently redirect or alter some of the connections.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGDATA
export PGSSLMODE=disable PGCONNECT_TIMEOUT=5 LC_ALL=C.UTF-8 LANG=C.UTF-8

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
# Everything started below is recorded here so that any exit (error, Ctrl-C, TERM) removes it.
WORK="" PG_BIN="" UNSCHARF_PID="" CSV=""
stop_pid() {  # TERM (unscharf drains gracefully), then KILL after 5 s
  kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1"; for _ in {1..50}; do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
}
cleanup() {
  set +e
  [[ -n $UNSCHARF_PID ]] && { stop_pid "$UNSCHARF_PID"; wait "$UNSCHARF_PID" 2>/dev/null; }
  [[ -n $WORK && -s $WORK/pgbouncer/pgbouncer.pid ]] && stop_pid "$(cat "$WORK/pgbouncer/pgbouncer.pid")"
  [[ -n $WORK && -d $WORK/pg/data ]] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1
  [[ -n $WORK ]] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- prerequisites
# Postgres refuses to run as root, so as root the server (and pgbouncer) run as `postgres`.
IS_ROOT=$([[ $(id -u) == 0 ]] && echo 1 || echo "")
as_pg() { if [[ -n $IS_ROOT ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

find_pg_bin() {
  local d
  for d in $(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)") /usr/lib/postgresql/15/bin /usr/local/bin; do
    [[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return; }
  done
  die "initdb/pg_ctl not found (PATH, /usr/lib/postgresql/15/bin, /usr/local/bin): apt-get install postgresql-15"
}
ensure_pgbouncer() {
  command -v pgbouncer >/dev/null && return
  local sudo=(); [[ -n $IS_ROOT ]] || { command -v sudo >/dev/null && sudo=(sudo); } \
    || die "pgbouncer missing and not root: install it with 'apt-get install pgbouncer'"
  log "pgbouncer not installed; installing it"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null \
    || die "installing pgbouncer failed: run 'apt-get install pgbouncer'"
}
check_prerequisites() {
  PG_BIN=$(find_pg_bin)
  local t; for t in pgbench psql createdb; do
    command -v "$t" >/dev/null || [[ -x $PG_BIN/$t ]] || die "$t not found: apt-get install postgresql-client-15"
  done
  PATH=$PATH:$PG_BIN
  [[ -z $IS_ROOT ]] || id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user"
  ensure_pgbouncer
}

# A port nothing listens on (and not handed out before in this run): good enough for a benchmark.
USED_PORTS=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    USED_PORTS+="$p "; echo "$p"; return
  done
}

# bash acts on Ctrl-C after a foreground child only if the child died of it; psql and createdb
# catch SIGINT (to cancel queries), which would swallow it. `wait` is interrupted by the trap.
interruptible() { "$@" <&0 & wait "$!"; }
# psql against a target port: every path authenticates the same way (trust over TCP).
sql() { local port=$1 user=$2; shift 2; interruptible psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$user" "$@"; }
wait_ready() {  # wait_ready NAME PORT PID_OR_EMPTY LOGFILE
  for _ in {1..100}; do
    sql "$2" bench -d crm -Atc 'select 1' >/dev/null 2>&1 && return
    if [[ -n $3 ]] && ! kill -0 "$3" 2>/dev/null; then break; fi
    sleep 0.2
  done
  [[ -f $4 ]] && tail -n 30 "$4" >&2
  die "$1 did not accept connections on port $2"
}

# ---------------------------------------------------------------- the three targets
start_postgres() {
  PG_PORT=$(free_port)
  mkdir -p "$WORK/pg"; [[ -n $IS_ROOT ]] && chown -R postgres: "$WORK"
  as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  # The same settings as src/cluster.rs: durability off, as only throughput matters here.
  as_pg tee -a "$WORK/pg/data/postgresql.conf" >/dev/null <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK/pg'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_connections = 200
EOF
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | as_pg tee "$WORK/pg/data/pg_hba.conf" >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$WORK/pg/server.log" >&2; die "postgres did not start"; }
  log "postgres on 127.0.0.1:$PG_PORT ($WORK/pg)"
}

load_data() {
  interruptible createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres crm
  local f; for f in schema data roles; do sql "$PG_PORT" postgres -d crm -f "sample/$f.sql" >/dev/null; done
  interruptible pgbench -q -i -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres crm >"$WORK/init.log" 2>&1 \
    || { cat "$WORK/init.log" >&2; die "pgbench -i failed"; }
  sql "$PG_PORT" postgres -d crm >/dev/null <<'EOF'
CREATE ROLE bench LOGIN;
GRANT USAGE ON SCHEMA public TO bench;
GRANT SELECT, UPDATE ON pgbench_accounts, pgbench_branches, pgbench_tellers TO bench;
GRANT INSERT ON pgbench_history TO bench;
ANALYZE;
EOF
  # roles.sql gives `unscharf` a password, but pg_hba trusts every local TCP login.
  sql "$PG_PORT" unscharf -d crm -Atc 'select 1' >/dev/null || die "role unscharf cannot connect"
}

start_unscharf() {
  UNSCHARF_PORT=$(free_port)
  local d=$WORK/unscharf; mkdir -p "$d/policies"
  cp policies/*.yaml bench/policies/bench.yaml "$d/policies/"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$d/pseudonym.key"
  cat >"$d/unscharf.yaml" <<EOF
listen: 127.0.0.1:$UNSCHARF_PORT
upstream: { host: 127.0.0.1, port: $PG_PORT, database: crm }
catalog: { user: unscharf }
policies: policies/
audit: { file: audit.jsonl }
pseudonym_key_file: pseudonym.key
EOF
  NO_COLOR=1 target/release/unscharf serve --config "$d/unscharf.yaml" 2>"$d/unscharf.log" &
  UNSCHARF_PID=$!
  wait_ready unscharf "$UNSCHARF_PORT" "$UNSCHARF_PID" "$d/unscharf.log"
  log "unscharf on 127.0.0.1:$UNSCHARF_PORT (pid $UNSCHARF_PID, log $d/unscharf.log)"
}

start_pgbouncer() {
  PGB_PORT=$(free_port)
  local d=$WORK/pgbouncer; mkdir -p "$d"
  echo '"bench" ""' >"$d/userlist.txt"
  cat >"$d/pgbouncer.ini" <<EOF
[databases]
crm = host=127.0.0.1 port=$PG_PORT dbname=crm
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $d/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
EOF
  # pgbouncer refuses to run as root; -u drops to postgres, which must read and write its files.
  local user=(); [[ -n $IS_ROOT ]] && { chown -R postgres: "$d"; user=(-u postgres); }
  pgbouncer -q -d "${user[@]}" "$d/pgbouncer.ini" || { tail -n 30 "$d/pgbouncer.log" >&2; die "pgbouncer did not start"; }
  wait_ready pgbouncer "$PGB_PORT" "" "$d/pgbouncer.log"
  log "pgbouncer on 127.0.0.1:$PGB_PORT (session mode)"
}

# The temp dir (and the proxy's log in it) is removed on exit, so show the log's tail on failure.
show_unscharf_log() {
  [[ $1 == unscharf && -f $WORK/unscharf/unscharf.log ]] || return 0
  echo "--- last lines of unscharf.log:" >&2; tail -n 20 "$WORK/unscharf/unscharf.log" >&2
}
# A fast proxy that logs errors or refuses statements is not a valid result: say so.
unscharf_health() {
  local d=$WORK/unscharf n a
  n=$(grep -cE 'WARN|ERROR' "$d/unscharf.log" || true)
  a=$(cat "$d/audit.jsonl" 2>/dev/null | wc -l || true)
  printf 'unscharf: %d warning/error log lines, %d audit records\n' "$n" "$a"
  # Timestamps stripped so that repeated messages collapse into one line with a count.
  [[ $n == 0 ]] || grep -E 'WARN|ERROR' "$d/unscharf.log" | cut -d' ' -f2- | sort | uniq -c | sort -rn | head -n 5
}

port_of() { case $1 in direct) echo "$PG_PORT" ;; pgbouncer) echo "$PGB_PORT" ;; unscharf) echo "$UNSCHARF_PORT" ;; esac; }

# ---------------------------------------------------------------- measuring
# run_pgbench TARGET MODE SECONDS [pgbench args...]: prints tps; any failed transaction is fatal,
# since a benchmark that silently drops errors (e.g. refusals by the proxy) measures nothing.
run_pgbench() {
  local target=$1 mode=$2 secs=$3 out tps; shift 3
  if ! out=$(pgbench -n -M "$mode" -c "$CLIENTS" -j "$THREADS" -T "$secs" \
              -h 127.0.0.1 -p "$(port_of "$target")" -U bench "$@" crm 2>&1); then
    printf '%s\n' "$out" >&2; show_unscharf_log "$target"; die "pgbench failed against $target ($mode)"
  fi
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")
  if [[ -z $tps ]] || ! grep -q '^number of failed transactions: 0 ' <<<"$out"; then
    printf '%s\n' "$out" >&2; show_unscharf_log "$target"
    die "pgbench against $target ($mode): failed transactions or no tps"
  fi
  echo "$tps"
}

record() { echo "$1,$2,$3,$4,$CLIENTS,$THREADS,$SECONDS_PER_RUN,$SCALE,$5" >>"$CSV"; }  # WORKLOAD ROUND MODE TARGET TPS

# The rotation puts a different target first in each round, so that none systematically runs on
# a cold cache or right after another target's load.
rotated_targets() {
  local r=$1 i n=${#TARGETS[@]}
  for ((i = 0; i < n; i++)); do echo "${TARGETS[(i + r - 1) % n]}"; done
}

workload_pgbench_select() {
  local t r m tps
  for t in "${TARGETS[@]}"; do run_pgbench "$t" simple 2 -S >/dev/null; done   # warm-up
  for ((r = 1; r <= ROUNDS; r++)); do
    for m in "${MODES[@]}"; do
      for t in $(rotated_targets "$r"); do
        tps=$(run_pgbench "$t" "$m" "$SECONDS_PER_RUN" -S)
        log "round $r/$ROUNDS  $m  $t: $tps tps"
        record pgbench_select "$r" "$m" "$t" "$tps"
      done
    done
  done
  report_tps_table pgbench_select "pgbench -S"
}

# ---------------------------------------------------------------- reporting
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
median_tps() {  # median_tps WORKLOAD MODE TARGET
  awk -F, -v w="$1" -v m="$2" -v t="$3" '$1 == w && $3 == m && $4 == t {print $9}' "$CSV" | median
}
report_tps_table() {  # report_tps_table WORKLOAD TITLE
  local m d b u
  printf '\n%s: %d clients, %d threads, %d s x %d rounds, scale %d; median tps\n' \
    "$2" "$CLIENTS" "$THREADS" "$SECONDS_PER_RUN" "$ROUNDS" "$SCALE"
  printf '%-9s %10s %10s %10s  %15s %18s %16s\n' mode direct pgbouncer unscharf \
    unscharf/direct unscharf/pgbouncer pgbouncer/direct
  for m in "${MODES[@]}"; do
    d=$(median_tps "$1" "$m" direct) b=$(median_tps "$1" "$m" pgbouncer) u=$(median_tps "$1" "$m" unscharf)
    awk -v m="$m" -v d="$d" -v b="$b" -v u="$u" 'BEGIN {
      printf "%-9s %10.0f %10.0f %10.0f  %15.2f %18.2f %16.2f\n", m, d, b, u, u / d, u / b, b / d }'
  done
}

# ---------------------------------------------------------------- main
main() {
  check_prerequisites
  if [[ -n $BUILD ]]; then
    log "building unscharf (release)"; cargo build --release --quiet || die "cargo build --release failed"
  fi
  [[ -x target/release/unscharf ]] || die "target/release/unscharf missing after the build"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/unscharf-bench.XXXXXX")
  chmod 755 "$WORK"
  start_postgres
  load_data
  start_unscharf
  start_pgbouncer

  mkdir -p bench/results
  CSV=$ROOT/bench/results/pgbench-$(date +%Y%m%d-%H%M%S).csv
  echo "workload,round,mode,target,clients,threads,seconds,scale,tps" >"$CSV"
  local w; for w in "${WORKLOADS[@]}"; do "workload_$w"; done
  echo; unscharf_health
  printf '\nraw results: %s\n' "${CSV#"$ROOT"/}"
}

main
