#!/usr/bin/env bash
# Throughput and memory of unscharf against direct Postgres and PgBouncer (session mode), measured
# in one run on a throwaway Postgres 15 cluster, so all targets share the machine's current load.
#
#   bench/run.sh [--workloads pgbench,masked,stream,idle] [--seconds N] [--rounds R] [--clients C]
#                [--threads J] [--scale S] [--rows-stream N,N,N] [--idle N] [--no-build]
#
# Workloads (default: all; each lives in bench/workloads/NAME.sh as a function workload_NAME):
#   pgbench  pgbench -S in simple/extended/prepared mode: direct vs PgBouncer vs unscharf
#   masked   bench/masked.sql (50 rows with phone/email/iban) through unscharf, masks on vs off
#   stream   SELECT * FROM bench_stream LIMIT N for each --rows-stream N: rows/s and unscharf's peak RSS
#   idle     --idle N idle sessions through unscharf: resident memory per session
# Prints a table per workload and a summary of all targets; raw results go to bench/results/*.csv.
set -euo pipefail

ALL_WORKLOADS=(pgbench masked idle stream)   # run order, whatever order --workloads lists (see main)
WORKLOAD_LIST=pgbench,masked,stream,idle
SECONDS_PER_RUN=10 ROUNDS=3 CLIENTS=8 THREADS=2 SCALE=10 BUILD=1
ROWS_STREAM=100000,1000000,5000000 IDLE_SESSIONS=1000
usage() { sed -n '5,6p' "$0" | sed 's/^#//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workloads) WORKLOAD_LIST=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --rounds)  ROUNDS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --scale)   SCALE=$2; shift 2 ;;
    --rows-stream) ROWS_STREAM=$2; shift 2 ;;
    --idle)    IDLE_SESSIONS=$2; shift 2 ;;
    --no-build) BUILD=""; shift ;;   # use target/release/unscharf as it is
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
for v in SECONDS_PER_RUN ROUNDS CLIENTS THREADS SCALE IDLE_SESSIONS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "${v}: expected a positive integer, got '${!v}'" >&2; exit 2; }
done
[[ $ROWS_STREAM =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] \
  || { echo "--rows-stream: expected positive integers separated by commas, got '$ROWS_STREAM'" >&2; exit 2; }
IFS=, read -r -a STREAM_SIZES <<<"$ROWS_STREAM"
IFS=, read -r -a _wanted <<<"$WORKLOAD_LIST"
for w in "${_wanted[@]}"; do
  [[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] \
    || { echo "--workloads: unknown workload '$w' (known: pgbench,masked,stream,idle)" >&2; exit 2; }
done
selected() { [[ ",$WORKLOAD_LIST," == *",$1,"* ]]; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGETS=(direct pgbouncer unscharf)
MODES=(simple extended prepared)

# Stray libpq variables would silently redirect or alter some of the connections.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGDATA
export PGSSLMODE=disable PGCONNECT_TIMEOUT=5 LC_ALL=C.UTF-8 LANG=C.UTF-8

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
# Everything started below is recorded here so that any exit (error, Ctrl-C, TERM) removes it.
# BG_PIDS: helpers a workload runs beside the measurement (RSS sampler, idle-session client).
WORK="" PG_BIN="" UNSCHARF_PID="" CSV="" BG_PIDS=() MASKS=""
stop_pid() {  # TERM (unscharf drains gracefully), then KILL after 5 s
  kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1"; for _ in {1..50}; do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
}
cleanup() {
  set +e
  local p; for p in "${BG_PIDS[@]}"; do stop_pid "$p"; wait "$p" 2>/dev/null; done
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
  if selected pgbench; then ensure_pgbouncer; fi
  if selected idle; then
    command -v curl >/dev/null || die "the idle workload reads unscharf's /metrics with curl: apt-get install curl"
    # Each idle session holds a client socket here and an upstream socket in unscharf.
    (( $(ulimit -n) > 2 * IDLE_SESSIONS + 200 )) \
      || die "--idle $IDLE_SESSIONS needs more open files than 'ulimit -n' ($(ulimit -n)) allows"
  fi
}

# A port nothing listens on (and not handed out before in this run): good enough for a benchmark.
# Below Linux's ephemeral range (32768+), where the local end of some client connection could
# hold the port (postgres then fails with "could not create any TCP/IP sockets").
USED_PORTS=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
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
  # The idle workload keeps one upstream connection per session open, plus pgbench's and spares.
  local max_conn=200
  if selected idle && (( IDLE_SESSIONS + 60 > max_conn )); then max_conn=$((IDLE_SESSIONS + 60)); fi
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
max_connections = $max_conn
EOF
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | as_pg tee "$WORK/pg/data/pg_hba.conf" >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$WORK/pg/server.log" >&2; die "postgres did not start"; }
  log "postgres on 127.0.0.1:$PG_PORT ($WORK/pg, max_connections $max_conn)"
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
  if selected masked || selected stream; then load_benchdata; fi
}

# Tables with personal data for the masked and stream workloads. Both exist whenever either runs,
# as benchdata.yaml names both; bench_stream is filled only when the stream workload runs.
load_benchdata() {
  local stream_rows=0 n
  if selected stream; then
    for n in "${STREAM_SIZES[@]}"; do (( n > stream_rows )) && stream_rows=$n; done
  fi
  log "loading bench_people (100000 rows) and bench_stream ($stream_rows rows)"
  sql "$PG_PORT" postgres -d crm >/dev/null <<EOF
CREATE TABLE public.bench_people (id int PRIMARY KEY, name text, phone text, email text, iban text, city text);
INSERT INTO public.bench_people SELECT g, 'Person ' || g, '+49 30 ' || lpad(g::text, 7, '0'), 'person' || g || '@example.org', 'DE89 3704 0044 ' || lpad(g::text, 10, '0') || ' 00', 'City ' || (g % 100) FROM generate_series(1, 100000) g;
CREATE TABLE public.bench_stream (id int, name text, phone text);
INSERT INTO public.bench_stream SELECT g, 'Person ' || g, '+49 30 ' || lpad(g::text, 7, '0') FROM generate_series(1, $stream_rows) g;
GRANT SELECT ON public.bench_people, public.bench_stream TO bench;
ANALYZE;
EOF
}

# benchdata.yaml adds the two tables to the `benchmark` purpose of bench/policies/bench.yaml
# (purposes of the same name merge across campaign files). Masks off allows the same columns.
write_benchdata_policy() {  # write_benchdata_policy on|off
  local d=$WORK/unscharf people stream
  if [[ $1 == on ]]; then
    people='{ columns: { id: allow, name: allow, city: allow, phone: { mask: last(3) }, email: { mask: email }, iban: { mask: iban } } }'
    stream='{ columns: { id: allow, name: allow, phone: { mask: last(3) } } }'
  else
    people='{ columns: all }' stream='{ columns: all }'
  fi
  cat >"$d/benchdata.yaml.new" <<EOF
# Written by bench/run.sh: masks $1.
campaign: benchdata
tables: [public.bench_people, public.bench_stream]
purposes:
  benchmark:
    members: [bench]
    tables:
      public.bench_people: $people
      public.bench_stream: $stream
EOF
  mv "$d/benchdata.yaml.new" "$d/policies/benchdata.yaml"   # a reload never sees half a file
}

start_unscharf() {
  UNSCHARF_PORT=$(free_port) ADMIN_PORT=$(free_port)
  local d=$WORK/unscharf limits=""; mkdir -p "$d/policies"
  cp policies/*.yaml bench/policies/bench.yaml "$d/policies/"
  if selected masked || selected stream; then write_benchdata_policy on; MASKS=on; fi
  if selected idle && (( IDLE_SESSIONS + 50 > 2000 )); then   # 2000: the default limit
    limits="limits: { max_client_sessions: $((IDLE_SESSIONS + 50)) }"
  fi
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$d/pseudonym.key"
  # The admin endpoint only serves /metrics and /healthz; the idle workload reads its gauges.
  cat >"$d/unscharf.yaml" <<EOF
listen: 127.0.0.1:$UNSCHARF_PORT
upstream: { host: 127.0.0.1, port: $PG_PORT, database: crm }
catalog: { user: unscharf }
policies: policies/
audit: { file: audit.jsonl }
pseudonym_key_file: pseudonym.key
admin: { listen: 127.0.0.1:$ADMIN_PORT }
$limits
EOF
  NO_COLOR=1 target/release/unscharf serve --config "$d/unscharf.yaml" 2>"$d/unscharf.log" &
  UNSCHARF_PID=$!
  wait_ready unscharf "$UNSCHARF_PORT" "$UNSCHARF_PID" "$d/unscharf.log"
  log "unscharf on 127.0.0.1:$UNSCHARF_PORT (pid $UNSCHARF_PID, admin :$ADMIN_PORT, log $d/unscharf.log)"
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
  [[ $1 == unscharf* && -f $WORK/unscharf/unscharf.log ]] || return 0
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

# unscharf-masks-on/-off are the same proxy; the masked workload switches its policy in between.
port_of() { case $1 in direct) echo "$PG_PORT" ;; pgbouncer) echo "$PGB_PORT" ;; unscharf*) echo "$UNSCHARF_PORT" ;; esac; }

# Masks on/off switch by rewriting benchdata.yaml and sending SIGHUP to the one unscharf process
# (rather than running a second instance): both variants then run in the same warm process, and
# RSS sampling and cleanup keep dealing with a single pid. Switching waits until a fresh session
# sees the new policy, i.e. until bench_people.phone comes back masked or in clear.
set_masks() {  # set_masks on|off
  [[ $MASKS == "$1" ]] && return
  local clear='+49 30 0000001' phone
  write_benchdata_policy "$1"
  kill -HUP "$UNSCHARF_PID"
  for _ in {1..100}; do
    phone=$(sql "$UNSCHARF_PORT" bench -d crm -Atc 'SELECT phone FROM bench_people WHERE id = 1' 2>/dev/null || true)
    if [[ $1 == on && -n $phone && $phone != "$clear" ]] || [[ $1 == off && $phone == "$clear" ]]; then
      MASKS=$1; return
    fi
    sleep 0.1
  done
  show_unscharf_log unscharf; die "unscharf did not switch masks $1 after SIGHUP (phone: '$phone')"
}

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
rotated() {  # rotated ROUND ITEM...
  local r=$1 i; shift
  for ((i = 0; i < $#; i++)); do echo "${@:((i + r - 1) % $# + 1):1}"; done
}
rotated_targets() { rotated "$1" "${TARGETS[@]}"; }

bg_stop() {  # bg_stop PID: stop a helper started into BG_PIDS and forget it
  local p keep=()
  stop_pid "$1"; wait "$1" 2>/dev/null || true
  for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
unscharf_metric() {  # unscharf_metric NAME: a gauge or counter without labels from /metrics
  curl -sf --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}

# ---------------------------------------------------------------- reporting
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
median_tps() {  # median_tps WORKLOAD MODE TARGET
  awk -F, -v w="$1" -v m="$2" -v t="$3" '$1 == w && $3 == m && $4 == t {print $9}' "$CSV" | median
}
# verdict VALUE OP LIMIT: "ok" or "MISSED" against a target such as ">= 0.9".
verdict() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v < l; print ok ? "ok" : "MISSED" }'; }
SUMMARY=()   # one line per target; the workloads append, main prints them last
summary() { SUMMARY+=("$(printf "$@")"); }

# ---------------------------------------------------------------- main
for w in "${ALL_WORKLOADS[@]}"; do source "bench/workloads/$w.sh"; done

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
  if selected pgbench; then start_pgbouncer; fi

  mkdir -p bench/results
  STAMP=$(date +%Y%m%d-%H%M%S)
  # pgbench and masked both measure tps: one CSV; stream and idle write their own (see there).
  if selected pgbench || selected masked; then
    CSV=$ROOT/bench/results/pgbench-$STAMP.csv
    echo "workload,round,mode,target,clients,threads,seconds,scale,tps" >"$CSV"
  fi
  # Fixed order: idle runs before stream, whose large results may leave freed memory in the
  # allocator that new sessions would reuse, hiding part of their cost.
  local w; for w in "${ALL_WORKLOADS[@]}"; do if selected "$w"; then "workload_$w"; fi; done

  echo; unscharf_health
  printf '\nsummary (%s)\n' "$WORKLOAD_LIST"
  printf '  %s\n' "${SUMMARY[@]}"
  printf '\nraw results: %s\n' "$(ls bench/results/*-"$STAMP".csv | tr '\n' ' ')"
}

main
