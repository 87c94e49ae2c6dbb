#!/bin/bash
# Where the print's dot lattice forms, and whether the CPU testbed's variants hold at print size: the
# 6000 px default schedule (rocket x The Starry Night) with a 1:1 crop and the dots figure at the end of
# every scale from 1699 px, for the default, average pooling and a tenth of the content weight
# (scripts/print_lattice.py; the testbed: docs/perf/print_lattice_cpu_testbed.json). About 40 s a variant
# on an H200. Prepare .gpu/ as the header of scripts/gpu_print_checks.sh says, then
# run(command="bash scripts/gpu_lattice_scales.sh", carry=[".gpu"], timeout_s=420)
source scripts/gpu_common.sh
nvidia-smi --query-gpu=name,memory.total --format=csv >> $log 2>&1
python3 -c "from impasto.vgg.weights import load_weights; load_weights()" >> $log 2>&1 || true
timeout 360 python3 scripts/print_lattice.py $I/rocket.jpg $I/starry_night.jpg --size 6000 --max-memory auto \
  --variant default --variant pooling=avg --variant content_weight=0.5 --from-size 1699 --crop 256 \
  --json $R/print_lattice_scales_gpu_6000.json --montage $R/print_lattice_scales_gpu_6000.png >> $log 2>&1
