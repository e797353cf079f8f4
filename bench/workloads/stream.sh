# Sourced by bench/run.sh. Large results: SELECT * FROM bench_stream LIMIT N (phone masked by
# unscharf) read to the end by psql, direct vs through unscharf. Shows the proxy's throughput on
# DataRow streams and, by sampling its RSS meanwhile, whether it holds results in memory.

STREAM_TARGETS=(direct unscharf)

# sample_rss PID FILE: append PID's VmRSS (kB) to FILE every 50 ms until killed or PID exits.
# Pure bash reads, so that sampling itself does not fork a process every 50 ms.
sample_rss() {
  local k v _
  while [[ -r /proc/$1/status ]]; do
    while read -r k v _; do [[ $k == VmRSS: ]] && echo "$v"; done <"/proc/$1/status"
    sleep 0.05
  done >>"$2"
}

# stream_once TARGET N: sets STREAM_SECS, and for unscharf STREAM_BASE_KB and STREAM_PEAK_KB.
# psql fetches the whole result (no FETCH_COUNT), writes it to /dev/null and then prints
# :ROW_COUNT, which must be N: a proxy that cuts a result short must not look fast.
stream_once() {
  local target=$1 n=$2 t0 t1 got sampler="" samples=$WORK/rss.samples
  STREAM_BASE_KB="" STREAM_PEAK_KB=""
  if [[ $target == unscharf ]]; then
    STREAM_BASE_KB=$(rss_kb "$UNSCHARF_PID"); : >"$samples"
    sample_rss "$UNSCHARF_PID" "$samples" & sampler=$!; BG_PIDS+=("$sampler")
  fi
  t0=$(date +%s%N)
  got=$(interruptible psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(port_of "$target")" -U bench -d crm \
          -o /dev/null -c "SELECT * FROM bench_stream LIMIT $n" -c '\echo :ROW_COUNT' 2>"$WORK/stream.err") \
    || { cat "$WORK/stream.err" >&2; show_unscharf_log "$target"; die "stream of $n rows via $target failed"; }
  t1=$(date +%s%N)
  if [[ -n $sampler ]]; then
    bg_stop "$sampler"
    STREAM_PEAK_KB=$( { cat "$samples"; echo "$STREAM_BASE_KB"; } | sort -n | tail -n 1)
  fi
  [[ $got == "$n" ]] || { show_unscharf_log "$target"; die "stream via $target returned '$got' rows, expected $n"; }
  STREAM_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
}

workload_stream() {
  local csv=$ROOT/bench/results/stream-$STAMP.csv r n t max=0 phone
  echo "round,rows,target,seconds,rows_per_s,rss_before_kb,rss_peak_kb" >"$csv"
  set_masks on
  phone=$(sql "$UNSCHARF_PORT" bench -d crm -Atc 'SELECT phone FROM bench_stream WHERE id = 1')
  [[ $phone != '+49 30 0000001' ]] || die "stream: bench_stream.phone is not masked through unscharf"
  for n in "${STREAM_SIZES[@]}"; do (( n > max )) && max=$n; done
  stream_once direct "$max"   # warm-up: the whole table into the caches
  for ((r = 1; r <= ROUNDS; r++)); do
    for n in "${STREAM_SIZES[@]}"; do
      for t in $(rotated "$r" "${STREAM_TARGETS[@]}"); do
        stream_once "$t" "$n"
        log "round $r/$ROUNDS  stream $n rows  $t: ${STREAM_SECS} s${STREAM_PEAK_KB:+, peak RSS $((STREAM_PEAK_KB / 1024)) MB}"
        echo "$r,$n,$t,$STREAM_SECS,$(awk -v n="$n" -v s="$STREAM_SECS" 'BEGIN {printf "%.0f", n / s}'),$STREAM_BASE_KB,$STREAM_PEAK_KB" >>"$csv"
      done
    done
  done

  printf '\nstream (SELECT * FROM bench_stream LIMIT N via psql, phone masked): %d rounds; median rows/s, max RSS\n' "$ROUNDS"
  printf '%10s %12s %12s %10s  %16s %14s\n' rows direct unscharf ratio unscharf-RSS-MB peak-RSS-MB
  local d u base peak ratio
  for n in "${STREAM_SIZES[@]}"; do
    d=$(awk -F, -v n="$n" '$2 == n && $3 == "direct" {print $5}' "$csv" | median)
    u=$(awk -F, -v n="$n" '$2 == n && $3 == "unscharf" {print $5}' "$csv" | median)
    base=$(awk -F, -v n="$n" '$2 == n && $3 == "unscharf" {print $6}' "$csv" | sort -n | tail -n 1)
    peak=$(awk -F, -v n="$n" '$2 == n && $3 == "unscharf" {print $7}' "$csv" | sort -n | tail -n 1)
    ratio=$(awk -v u="$u" -v d="$d" 'BEGIN {printf "%.2f", u / d}')
    awk -v n="$n" -v d="$d" -v u="$u" -v r="$ratio" -v b="$base" -v p="$peak" 'BEGIN {
      printf "%10d %12.0f %12.0f %10.2f  %16.1f %14.1f\n", n, d, u, r, b / 1024, p / 1024 }'
    summary 'stream     %9s rows: unscharf/direct %s (target >= 0.8: %s)  peak RSS %.1f MB (target < 64: %s)' \
      "$n" "$ratio" "$(verdict "$ratio" '>=' 0.8)" "$(awk -v p="$peak" 'BEGIN {print p / 1024}')" \
      "$(verdict "$(awk -v p="$peak" 'BEGIN {print p / 1024}')" '<' 64)"
  done
  echo "(unscharf-RSS-MB: highest RSS right before a run; peak-RSS-MB: highest sample during the runs, every 50 ms)"
}
