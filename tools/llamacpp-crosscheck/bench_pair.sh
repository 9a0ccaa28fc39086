#!/bin/bash
# Interleaved timing of ficoco and llama.cpp on one GGUF pair (docs/quantized.md, "Speed"):
# per round, `ficoco bench` (no reduction and FiCoCo-VL at 64 visual tokens, one process),
# then our llama.cpp driver; peak RSS of each from /usr/bin/time. Both get the LLaVA-1.5
# prompt around the same question, 32 new tokens, 2 threads.
#
#   bench_pair.sh FICOCO LLAMA_DRIVER TEXT.gguf MMPROJ.gguf MMPROJ_FL.gguf IMAGE ROUNDS OUT_DIR
#
# MMPROJ_FL: the mmproj copy with clip.vision.feature_layer (gguf_set_feature_layer.py), so
# that llama.cpp runs the same CLIP blocks as ficoco. IMAGE: a picture already at the model's
# size (make_square_png.py 336 OUT). Results: OUT_DIR/ficoco_R.json (bench JSON),
# OUT_DIR/llama_R.json (driver JSON), OUT_DIR/*_rss_R.txt (KiB).
set -euo pipefail
if [ $# -ne 8 ]; then sed -n 2,13p "$0" >&2; exit 2; fi
FICOCO=$1 LLAMA=$2 TEXT=$3 MM=$4 MMFL=$5 IMG=$6 ROUNDS=$7 OUT=$8
Q="What is in the picture? Describe the shapes, their colours and where they are."
P=$'A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human\'s questions. USER: <image>\n'"$Q"' ASSISTANT:'
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  /usr/bin/time -f "%M" -o "$OUT/ficoco_rss_$r.txt" "$FICOCO" bench --model "$TEXT" --mmproj "$MM" --image "$IMG" \
    --prompt "$Q" --threads 2 --max-tokens 32 --methods none,ficoco-vl --keeps 64 --rounds 1 \
    --json "$OUT/ficoco_$r.json" > "$OUT/ficoco_$r.txt" 2>&1
  /usr/bin/time -f "%M" -o "$OUT/llama_rss_$r.txt" "$LLAMA" --model "$TEXT" --mmproj "$MMFL" --image "$IMG" \
    --prompt "$P" -n 32 -t 2 --warmup > "$OUT/llama_$r.json" 2> "$OUT/llama_$r.err"
done
