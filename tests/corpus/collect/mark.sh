#!/usr/bin/env bash
# mark.sh CLIENT STEP: records that CLIENT starts STEP now (used from psql's \!).
sleep 0.03
printf '%s\t%s\t%s\n' "$(date +%s.%N)" "$1" "$2" >> "$MARKERS"
sleep 0.03
