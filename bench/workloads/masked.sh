# Sourced by bench/run.sh. bench/masked.sql reads 50 rows of bench_people per transaction, three
# of six columns masked (last(3), email, iban): what masking costs on top of proxying. The same
# unscharf runs it with masks on and off (all columns allowed), interleaved over the rounds;
# direct Postgres is the reference.

MASKED_MODES=(simple prepared)
MASKED_TARGETS=(direct unscharf-masks-on unscharf-masks-off)

workload_masked() {
  local t r m tps args=(-f bench/masked.sql)
  run_pgbench direct simple 2 "${args[@]}" >/dev/null   # warm-up: bench_people into the cache
  for t in on off; do set_masks "$t"; run_pgbench "unscharf-masks-$t" simple 2 "${args[@]}" >/dev/null; done
  for ((r = 1; r <= ROUNDS; r++)); do
    for m in "${MASKED_MODES[@]}"; do
      for t in $(rotated "$r" "${MASKED_TARGETS[@]}"); do
        [[ $t == direct ]] || set_masks "${t#unscharf-masks-}"
        tps=$(run_pgbench "$t" "$m" "$SECONDS_PER_RUN" "${args[@]}")
        log "round $r/$ROUNDS  masked $m  $t: $tps tps"
        record masked "$r" "$m" "$t" "$tps"
      done
    done
  done
  set_masks on   # what the stream workload expects

  printf '\nmasked (bench/masked.sql, 50 rows x 6 columns): %d clients, %d threads, %d s x %d rounds; median tps\n' \
    "$CLIENTS" "$THREADS" "$SECONDS_PER_RUN" "$ROUNDS"
  printf '%-9s %10s %10s %10s  %12s %15s\n' mode direct masks-on masks-off on/off on/direct
  local d on off
  for m in "${MASKED_MODES[@]}"; do
    d=$(median_tps masked "$m" direct) on=$(median_tps masked "$m" unscharf-masks-on) off=$(median_tps masked "$m" unscharf-masks-off)
    awk -v m="$m" -v d="$d" -v on="$on" -v off="$off" 'BEGIN {
      printf "%-9s %10.0f %10.0f %10.0f  %12.2f %15.2f\n", m, d, on, off, on / off, on / d }'
    summary 'masked     %-9s masks on/off %s (target >= 0.9: %s)  on/direct %s' "$m" \
      "$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}')" \
      "$(verdict "$(awk -v a="$on" -v b="$off" 'BEGIN {print a / b}')" '>=' 0.9)" \
      "$(awk -v a="$on" -v b="$d" 'BEGIN {printf "%.2f", a / b}')"
  done
}
