#!/bin/bash
# Peak RSS of a long print-size run, per scale, for scripts/poster_log.py --memwatch.
#
#   nohup setsid bash scripts/poster_memwatch.sh out/print/poster_6000.log out/print/poster_mem.log &
#
# Every 5 s it appends "EPOCH pid=PID step N/T WxH [tiles=K] VmHWM:=KB VmRSS:=KB" for the impasto
# process. When the run's log shows a new scale it appends a SCALE_END line (prev=WxH, the peak since
# the last reset: that scale's steps, the next scale's set-up and first step) and resets the peak
# (clear_refs 5), so each scale's peak is its own. The reset also resets the peak /usr/bin/time reports.
log=${1:?the run log (--print-every 1)}
out=${2:?the file to append to}
prev=""
while true; do
  pid=$(pgrep -f "python .*bin/impasto" | head -1)
  if [ -z "$pid" ]; then sleep 10; continue; fi
  last=$(tail -1 "$log" | grep -oE '^step +[0-9]+/[0-9]+ [0-9]+x[0-9]+( tiles=[0-9]+)?')
  size=$(echo "$last" | awk '{print $3}')
  st=$(grep -E "VmRSS|VmHWM" "/proc/$pid/status" 2>/dev/null | awk '{printf "%s=%s ", $1, $2}')
  echo "$(date +%s) pid=$pid $last $st" >> "$out"
  if [ -n "$size" ] && [ "$size" != "$prev" ]; then
    echo "$(date +%s) pid=$pid SCALE_END prev=$prev next=$size $st" >> "$out"
    echo 5 > "/proc/$pid/clear_refs" 2>/dev/null
    prev=$size
  fi
  sleep 5
done
