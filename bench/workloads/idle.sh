# Sourced by bench/run.sh. Memory per idle session: unscharf's RSS before and while --idle N
# sessions (opened by bench/workloads/idle_sessions.py, psycopg) sit idle after startup, and
# whether its unscharf_sessions_active gauge returns to where it was once they are closed.

# A Python with psycopg: the project's test venv if present, else a throwaway one in $WORK.
idle_python() {
  local py=$ROOT/target/pyenv/bin/python
  if [[ -x $py ]] && "$py" -c 'import psycopg' 2>/dev/null; then echo "$py"; return; fi
  py=$WORK/pyenv/bin/python
  if [[ ! -x $py ]]; then
    log "no psycopg in target/pyenv: creating a venv in $WORK/pyenv"
    python3 -m venv "$WORK/pyenv" >&2 && "$py" -m pip install -q 'psycopg[binary]' >&2 \
      || die "creating a Python venv with psycopg failed"
  fi
  echo "$py"
}

# wait_gauge NAME VALUE: poll /metrics (10 s at most) until NAME equals VALUE; prints the last value.
wait_gauge() {
  local v=""
  for _ in {1..100}; do
    v=$(unscharf_metric "$1" || true)
    [[ $v == "$2" ]] && break
    sleep 0.1
  done
  echo "${v:-?}"
}

workload_idle() {
  local csv=$ROOT/bench/results/idle-$STAMP.csv py r
  echo "round,sessions,ok,failed,open_seconds,rss_before_kb,rss_open_kb,kb_per_session,active_before,active_open,active_after_close,rss_after_close_kb" >"$csv"
  py=$(idle_python)
  for ((r = 1; r <= ROUNDS; r++)); do idle_round "$r" "$py" "$csv"; done

  printf '\nidle (%d sessions via psycopg, opened 50 at a time): %d rounds\n' "$IDLE_SESSIONS" "$ROUNDS"
  printf '%5s %6s %6s %7s %10s %10s %11s %12s %14s\n' round ok failed open-s RSS-before RSS-open KB/session \
    active-open RSS-after-close
  awk -F, 'NR > 1 {printf "%5d %6d %6d %7.1f %8.1fMB %8.1fMB %11.1f %12s %12.1fMB\n", $1, $3, $4, $5, $6 / 1024, $7 / 1024, $8, $10, $12 / 1024}' "$csv"
  # The largest figure (normally round 1) is the honest one: later rounds partly reuse memory
  # that the allocator kept from the sessions of earlier rounds, so they show less. RSS after
  # close across rounds shows whether closed sessions leave memory behind (growth that does not
  # level off).
  local kb kbmed failed active rss_after
  kb=$(awk -F, 'NR > 1 {print $8}' "$csv" | sort -g | tail -n 1)
  kbmed=$(awk -F, 'NR > 1 {print $8}' "$csv" | median)
  failed=$(awk -F, 'NR > 1 {f += $4} END {print f + 0}' "$csv")
  active=$(awk -F, 'NR > 1 && $11 != $9 {bad++} END {print bad + 0}' "$csv")
  rss_after=$(awk -F, 'NR == 2 {printf "%.1f", $6 / 1024} NR > 1 {printf " -> %.1f", $12 / 1024}' "$csv")
  summary 'idle       %d sessions: %.1f KB/session (max; median %.1f); %d failed connections; %s' \
    "$IDLE_SESSIONS" "$kb" "$kbmed" "$failed" \
    "$([[ $active == 0 ]] && echo "sessions_active back to its start value" || echo "sessions_active NOT back in $active round(s)")"
  summary '           RSS before round 1, then after closing each round: %s MB' "$rss_after"
}

idle_round() {  # idle_round ROUND PYTHON CSV
  local r=$1 py=$2 csv=$3 pid ready=$WORK/idle.ready release=$WORK/idle.release
  local active0 active_open active_after before open after ok failed secs kb
  rm -f "$ready" "$release"
  active0=$(unscharf_metric unscharf_sessions_active) || die "cannot read unscharf's /metrics on :$ADMIN_PORT"
  before=$(rss_kb "$UNSCHARF_PID")
  "$py" bench/workloads/idle_sessions.py --port "$UNSCHARF_PORT" --count "$IDLE_SESSIONS" --parallel 50 \
    --ready "$ready" --release "$release" 2>"$WORK/idle.err" &
  pid=$!; BG_PIDS+=("$pid")
  while [[ ! -s $ready ]]; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/idle.err" >&2; die "idle_sessions.py exited before opening its sessions"; }
    sleep 0.1
  done
  read -r _ ok _ failed _ secs <"$ready"
  sleep 0.5   # let sessions that just finished startup settle (buffers sized, tasks parked)
  open=$(rss_kb "$UNSCHARF_PID")
  active_open=$(unscharf_metric unscharf_sessions_active || echo "?")
  if (( failed > 0 )); then
    log "idle round $r: $failed of $IDLE_SESSIONS connections failed; first errors:"
    tail -n +2 "$ready" | sed 's/^/    /' >&2
  fi
  touch "$release"
  wait "$pid" || log "idle_sessions.py exited with status $? while closing"
  bg_stop "$pid"
  active_after=$(wait_gauge unscharf_sessions_active "$active0")
  after=$(rss_kb "$UNSCHARF_PID")
  kb=$(awk -v a="$open" -v b="$before" -v n="$ok" 'BEGIN {printf "%.1f", n ? (a - b) / n : 0}')
  log "idle round $r/$ROUNDS: $ok open ($failed failed) in ${secs}s; RSS $before -> $open kB ($kb KB/session), active $active0 -> $active_open -> $active_after, RSS after close $after kB"
  echo "$r,$IDLE_SESSIONS,$ok,$failed,$secs,$before,$open,$kb,$active0,$active_open,$active_after,$after" >>"$csv"
}
