#!/bin/bash
# One device call (issue 21): what is alive at the peak of a tiled scale on the GPU, where the peak was
# 5 to 9 % over the budget (4096 px in 2 to 4 tiles under 24 GiB; 3193 px in 6 to 9 tiles under 7 GiB).
# Prepared as scripts/gpu_print_checks.sh says; run(command="bash scripts/gpu_memory_peak.sh", carry=[".gpu"]).
source scripts/gpu_common.sh
python3 -c "from impasto.vgg.weights import load_weights; load_weights()" >> $log 2>&1 || true
timeout 90 python3 scripts/gpu_memory_peak.py --peak-json $R/gpu_memory_peak_4096_24GiB.json $I/rocket.jpg \
  $I/starry_night.jpg -o $P/a.png --size 4096 --max-memory 24GiB --json $R/run_4096_24GiB.json \
  -- --start-size 4096 --steps 4 2>&1 | grep -v "^step" >> $log
timeout 70 python3 scripts/gpu_memory_peak.py --peak-json $R/gpu_memory_peak_3193_7GiB.json $I/rocket.jpg \
  $I/starry_night.jpg -o $P/b.png --size 3193 --max-memory 7GiB --json $R/run_3193_7GiB.json \
  -- --start-size 3193 --steps 4 2>&1 | grep -v "^step" >> $log
