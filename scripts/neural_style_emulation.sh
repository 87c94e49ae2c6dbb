#!/bin/sh
# impasto configured as jcjohnson/neural-style's defaults (its README: 512 px, VGG19 Caffe weights,
# content relu4_2 weight 5, style relu1_1..relu5_1 weight 100, TV 1e-3, Gram / (C·H·W) with mean-squared
# errors, 1000 L-BFGS iterations with no line search from noise of std 0.001 in 0-255 units around the
# ImageNet mean, no clamping during the run): a stand-in reference for pairs neural-style has no published
# picture of. It is an emulation, not neural-style's own output.
# It checkpoints every 100 iterations (about 4 minutes on the 2-core CPU); run the same command again after
# an interruption and it resumes from OUT.png.ckpt (on the CPU a resumed run gives the same pixels).
#   sh scripts/neural_style_emulation.sh CONTENT STYLE OUT.png
set -eu
if [ -f "$3.ckpt" ]; then
    exec python -m impasto resume "$3.ckpt" -q
fi
exec python -m impasto "$1" "$2" -o "$3" --size 512 --start-size none --steps 1000 --balance none \
    --content-weight 5 --style-weight 100 --tv-weight 1e-3 --init noise --noise-scale 4e-6 --no-clamp \
    --lbfgs-max-step none --restart-factor none --checkpoint-every 100 -q
