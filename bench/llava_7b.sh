#!/usr/bin/env bash
# End-to-end figures on a random-weight LLaVA-1.5-7B (real shapes), 2 threads:
# CLIP encode time (577 tokens), prefill of the usual LLaVA prompt, time to first
# token, decode tokens/s and peak RSS. Writes the checkpoint once (14 GB f16).
#   bench/llava_7b.sh [MODEL_DIR] [COMPUTE]   (defaults: /work/rand-7b, bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${FICOCO_BUILD_DIR:-build}"
MODEL="${1:-/work/rand-7b}"
COMPUTE="${2:-bf16}"
THREADS="${THREADS:-2}"
if [ ! -f "$MODEL/config.json" ]; then
  "$BUILD_DIR/ficoco" make-random --preset llava-1.5-7b --dtype f16 --seed 7 --out "$MODEL"
fi
[ -f "$MODEL/tokenizer.model" ] || cp assets/tokenizer/ficoco-demo.model "$MODEL/tokenizer.model"
echo "== encode (CLIP ViT-L/14-336, 577 tokens, $COMPUTE, $THREADS threads)"
for i in 1 2 3; do
  "$BUILD_DIR/ficoco" encode --model "$MODEL" --image assets/demo.png --threads "$THREADS" --compute "$COMPUTE" --json |
    python3 -c 'import json,sys; j=json.load(sys.stdin); t=j["timings_s"]; print(f"vision {t[\"vision\"]:.3f} s  projector {t[\"projector\"]:.3f} s  load {t[\"load\"]:.1f} s  peak RSS {j[\"peak_rss_bytes\"]/2**30:.2f} GiB")'
done
echo "== run (LLaVA-1.5 template, 576 image tokens, 32 new tokens, $COMPUTE, $THREADS threads)"
"$BUILD_DIR/ficoco" run --model "$MODEL" --image assets/demo.png --threads "$THREADS" --compute "$COMPUTE" \
  --prompt "What is in the picture? Describe the shapes, their colours and where they are." --max-tokens 32 --json |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["stats"]; print(json.dumps(s, indent=1)); print(f"prefill {s[\"prompt_tokens\"]/s[\"prefill_s\"]:.1f} tok/s")'
