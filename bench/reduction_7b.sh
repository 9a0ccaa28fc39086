#!/usr/bin/env bash
# Token reduction end to end on a random-weight LLaVA-1.5-7B (real shapes), 2 threads:
# time to first token and total time for 32 new tokens, for no reduction and for
# FiCoCo-V / -L / -VL at 192, 128 and 64 visual tokens, with the LLM-Viewer FLOPs of each
# request and the share of the theoretical (encode + prefill) FLOPs ratio reached.
# The model is loaded once and the configs run interleaved, round after round.
#   bench/reduction_7b.sh [MODEL_DIR] [ROUNDS]   (defaults: /work/rand-7b, 1)
# Extra `ficoco bench` options may follow in EXTRA (e.g. EXTRA="--llm-start 2").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${FICOCO_BUILD_DIR:-build}"
MODEL="${1:-/work/rand-7b}"
ROUNDS="${2:-1}"
THREADS="${THREADS:-2}"
if [ ! -f "$MODEL/config.json" ]; then
  "$BUILD_DIR/ficoco" make-random --preset llava-1.5-7b --dtype f16 --seed 7 --out "$MODEL"
fi
[ -f "$MODEL/tokenizer.model" ] || cp assets/tokenizer/ficoco-demo.model "$MODEL/tokenizer.model"
# shellcheck disable=SC2086
"$BUILD_DIR/ficoco" bench --model "$MODEL" --image assets/demo.png --threads "$THREADS" --max-tokens 32 \
  --prompt "What is in the picture? Describe the shapes, their colours and where they are." \
  --rounds "$ROUNDS" --json "${OUT:-/tmp/reduction_7b.json}" ${EXTRA:-}
