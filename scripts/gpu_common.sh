# Sourced by the scripts/gpu_*.sh device calls: the environment, the folders, and the one tar of
# $P/res they send back on exit, split into 15 MiB parts (cat $OUT/gpu.tar.* | tar x).
export PYTHONPATH=src:.gpu IMPASTO_CACHE=/tmp/ic PYTHONUNBUFFERED=1
I=.gpu/img; P=/tmp/p; R=$P/res; mkdir -p "$R"
log=$R/log.txt
pack() { (cd "$P" && tar cf - res) | split -b 15M - "$OUT/gpu.tar."; }
trap pack EXIT
