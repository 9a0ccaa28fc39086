#!/usr/bin/env bash
# Quantized text weights on a random-weight LLaVA-1.5-7B (real shapes), 2 threads: one
# model load per weight type (`ficoco bench`, one unreduced request), reporting CLIP
# encode, prompt prefill (tok/s), time to first token, decode tok/s and peak RSS -- the
# columns of llama.cpp's table in docs/quantized.md. Heavy: ~14 GB read per load.
#   bench/quant_7b.sh [MODEL_DIR] [WEIGHT_TYPES]   (defaults: /work/rand-7b, "q8_0 q4_0")
# Environment: FICOCO_BUILD_DIR (default build), THREADS (2), MAX_TOKENS (16), ROUNDS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${FICOCO_BUILD_DIR:-build}"
MODEL="${1:-/work/rand-7b}"
TYPES="${2:-q8_0 q4_0}"
THREADS="${THREADS:-2}"
MAX_TOKENS="${MAX_TOKENS:-16}"
ROUNDS="${ROUNDS:-1}"
PY=/usr/bin/python3
[ -f "$MODEL/config.json" ] || { echo "no model at $MODEL (make one with: ficoco make-random --preset llava-1.5-7b --out $MODEL)" >&2; exit 1; }
[ -f "$MODEL/tokenizer.model" ] || cp assets/tokenizer/ficoco-demo.model "$MODEL/tokenizer.model"
OUT="$(mktemp -d)"
for t in $TYPES; do
  echo "== --weights $t ($THREADS threads, $MAX_TOKENS new tokens, $ROUNDS round(s))"
  /usr/bin/time -v "$BUILD_DIR/ficoco" bench --model "$MODEL" --image assets/demo.png --threads "$THREADS" \
    --methods none --max-tokens "$MAX_TOKENS" --rounds "$ROUNDS" --warmup false --weights "$t" \
    --prompt "What is in the picture?" --json "$OUT/$t.json" 2> "$OUT/$t.err" > "$OUT/$t.out" || { cat "$OUT/$t.err"; exit 1; }
  wall=$(grep "Elapsed (wall clock)" "$OUT/$t.err" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$OUT/$t.err" | awk '{print $NF}')
  $PY - "$OUT/$t.json" "$wall" "$rss" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
c = j["configs"][0]
n = j["max_new_tokens"]
decode = (n - 1) / (c["total_s"] - c["time_to_first_token_s"]) if n > 1 else float("nan")
tokens = j["prompt_ids"] - 1 + c["image_tokens"]  # the <image> id expands to the image tokens
print(f"weights {j['weights']}: prompt {tokens} tokens ({c['image_tokens']} image tokens)")
print(f"  encode {c['encode_s']:.2f} s | prefill {c['prefill_s']:.2f} s ({tokens / c['prefill_s']:.1f} tok/s)"
      f" | first token {c['time_to_first_token_s']:.2f} s | decode {decode:.2f} tok/s"
      f" | peak RSS {int(sys.argv[3]) / 2**20:.2f} GiB | process wall {sys.argv[2]} (incl. load)")
EOF
done
rm -rf "$OUT"
