#!/bin/sh
# impasto configured as jcjohnson/neural-style's defaults (its README: 512 px, VGG19 Caffe weights, max
# pooling, content relu4_2 weight 5, style relu1_1..relu5_1 weight 100, TV 1e-3, Gram / (C·H·W) with
# mean-squared errors, 1000 L-BFGS iterations (100 history pairs) with no line search from noise of std
# 0.001 in 0-255 units around the ImageNet mean, no clamping during the run): a stand-in reference for
# pairs neural-style has no published picture of. It is an emulation, not neural-style's own output.
# Every setting is given as a flag, so a change of impasto's defaults never changes the stand-in
# (tests/test_neural_style_emulation.py reads the resolved configuration).
# It checkpoints every 100 iterations (4-7 minutes on the 2-core CPU); run the same command again after
# an interruption and it resumes from OUT.png.ckpt (on the CPU a resumed run gives the same pixels).
#   sh scripts/neural_style_emulation.sh CONTENT STYLE OUT.png [more impasto flags, e.g. --show-config]
set -eu
if [ -f "$3.ckpt" ]; then
    exec python -m impasto resume "$3.ckpt" -q
fi
content=$1 style=$2 out=$3
shift 3
exec python -m impasto "$content" "$style" -o "$out" --size 512 --start-size none --steps 1000 \
    --pooling max --content-layers relu4_2 --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 \
    --style-layer-weights none --content-loss mse --gram-norm chw --style-loss mse --tv-loss l2 \
    --balance none --content-weight 5 --style-weight 100 --tv-weight 1e-3 --style-scale 1 \
    --optimizer lbfgs --lbfgs-history 100 --lbfgs-history-mib none --lbfgs-max-iter 1 --lbfgs-max-step none \
    --restart-factor none --init noise --noise gaussian --noise-scale 4e-6 --no-clamp --seed 0 \
    --style-kind gram --preserve-color none --ema none --tol none --max-memory none \
    --checkpoint-every 100 -q "$@"
