#!/bin/bash
# One device call (issue 21): --style-max-zoom against the default at 6000 px on the dev pair and two
# test pairs (docs/perf/style_max_zoom_protocol.md), and the 6000 px poster with --style-max-zoom 1 at
# the CPU poster's 7 GiB with its preview, seam figure and border crops. Four runs at a time share the
# GPU (so their times are not figures). Everything comes back as one tar split in 15 MiB parts.
# Prepare as scripts/gpu_print_checks.sh says, adding tubingen.jpg, the_wave.jpg, coffee.png and
# composition_vii.jpg to .gpu/img; then run(command="bash scripts/gpu_style_max_zoom.sh", carry=[".gpu"]).
source scripts/gpu_common.sh
stage() { echo "== $1 $(date +%s)" >> $log; }
one() {  # name content style budget zoom
  local z=(); [ "$5" != none ] && z=(--style-max-zoom "$5")
  timeout 150 python3 scripts/gpu_print_size.py $I/$2 $I/$3 -o $P/$1.png --size 6000 --max-memory $4 "${z[@]}" \
    --json $R/run_$1.json > $P/$1.log 2>&1; echo "$1 rc=$?" >> $log; grep -v "^step" $P/$1.log | tail -3 >> $log
}
python3 -c "import torch; print(torch.cuda.get_device_name(), torch.__version__)" >> $log 2>&1
# warm the weights cache once, so four processes do not all build it
python3 -c "from impasto.vgg.weights import load_weights; load_weights()" >> $log 2>&1 || true
stage batch1
one poster_z1 rocket.jpg starry_night.jpg 7GiB 1 &
one rocket_z2 rocket.jpg starry_night.jpg 30GiB 2 &
one tub_none tubingen.jpg the_wave.jpg 30GiB none &
one tub_z1 tubingen.jpg the_wave.jpg 30GiB 1 &
wait
stage poster
if [ -f $P/poster_z1.png ]; then
  timeout 30 python3 scripts/poster_preview.py $P/poster_z1.png $R/poster_6000_z1.jpg >> $log 2>&1
  timeout 90 python3 scripts/poster_seams.py $P/poster_z1.png $I/rocket.jpg $I/starry_night.jpg --max-memory 7GiB \
    --json $R/poster_6000_z1_seams.json --crops $R/poster_6000_z1_border_crops.png >> $log 2>&1 &
fi
stage batch2
one tub_z2 tubingen.jpg the_wave.jpg 30GiB 2 &
one cof_none coffee.png composition_vii.jpg 30GiB none &
one cof_z1 coffee.png composition_vii.jpg 30GiB 1 &
one cof_z2 coffee.png composition_vii.jpg 30GiB 2 &
wait
stage score
timeout 90 python3 scripts/print_lattice.py --score $P/poster_z1.png $P/rocket_z2.png $P/tub_none.png $P/tub_z1.png \
  $P/tub_z2.png $P/cof_none.png $P/cof_z1.png $P/cof_z2.png --json $R/print_lattice_style_max_zoom_6000.json >> $log 2>&1
timeout 90 python3 - >> $log 2>&1 <<'PY'
import os
from PIL import Image
Image.MAX_IMAGE_PIXELS = 80_000_000
P = "/tmp/p"
for pair, names in (("rocket", ("poster_z1", "rocket_z2")), ("tub", ("tub_none", "tub_z1", "tub_z2")),
                    ("cof", ("cof_none", "cof_z1", "cof_z2"))):
    crops = []
    for name in names:
        path = f"{P}/{name}.png"
        if not os.path.exists(path):
            continue
        with Image.open(path) as im:
            im = im.convert("RGB"); w, h = im.size
            for fy, fx in ((0.33, 0.28), (0.6, 0.35)):
                t, l = round(fy * h) - 256, round(fx * w) - 256
                crops.append(im.crop((l, t, l + 512, t + 512)))
            im.resize((1600, round(1600 * h / w)), Image.LANCZOS).save(f"{P}/res/{name}_1600.jpg", quality=90)
    if crops:
        sheet = Image.new("RGB", (512 * len(crops) + 8 * (len(crops) - 1), 512), "white")
        for i, c in enumerate(crops):
            sheet.paste(c, (i * 520, 0))
        sheet.save(f"{P}/res/crops_{pair}.png")
PY
wait
stage end
