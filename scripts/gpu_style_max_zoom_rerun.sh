#!/bin/bash
# The two runs of scripts/gpu_style_max_zoom.sh that ran out of GPU memory beside three others (Tübingen
# x The Wave with --style-max-zoom 1 and 2), again two at a time under 24 GiB each, scored and cropped
# as there. run(command="bash scripts/gpu_style_max_zoom_rerun.sh", carry=[".gpu"], timeout_s=300)
source scripts/gpu_common.sh
python3 -c "from impasto.vgg.weights import load_weights; load_weights()" >> $log 2>&1 || true
for z in 1 2; do
  timeout 150 python3 scripts/gpu_print_size.py $I/tubingen.jpg $I/the_wave.jpg -o $P/tub_z$z.png --size 6000 \
    --max-memory 24GiB --style-max-zoom $z --json $R/run_tub_z$z.json > $P/tub_z$z.log 2>&1 &
done
wait
grep -v "^step" $P/tub_z*.log | tail -12 >> $log
timeout 60 python3 scripts/print_lattice.py --score $P/tub_z1.png $P/tub_z2.png --json $R/print_lattice_tub_z.json >> $log 2>&1
timeout 60 python3 - >> $log 2>&1 <<'PY'
from PIL import Image
Image.MAX_IMAGE_PIXELS = 80_000_000
crops = []
for name in ("tub_z1", "tub_z2"):
    with Image.open(f"/tmp/p/{name}.png") as im:
        im = im.convert("RGB"); w, h = im.size
        for fy, fx in ((0.33, 0.28), (0.6, 0.35)):
            t, l = round(fy * h) - 256, round(fx * w) - 256
            crops.append(im.crop((l, t, l + 512, t + 512)))
        im.resize((1600, round(1600 * h / w)), Image.LANCZOS).save(f"/tmp/p/res/{name}_1600.jpg", quality=90)
sheet = Image.new("RGB", (512 * len(crops) + 8 * (len(crops) - 1), 512), "white")
for i, c in enumerate(crops):
    sheet.paste(c, (i * 520, 0))
sheet.save("/tmp/p/res/crops_tub_z.png")
PY
