# Sourced by bench/run.sh. pgbench -S (one primary-key SELECT per transaction) in each protocol
# mode against direct Postgres, PgBouncer and unscharf: the proxy's per-statement overhead.

workload_pgbench() {
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
    summary 'pgbench -S %-9s unscharf/pgbouncer %s  unscharf/direct %s' "$m" \
      "$(awk -v u="$u" -v b="$b" 'BEGIN {printf "%.2f", u / b}')" "$(awk -v u="$u" -v d="$d" 'BEGIN {printf "%.2f", u / d}')"
  done
}
