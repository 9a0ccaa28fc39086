#!/usr/bin/env bash
# Runs llama.cpp itself on the GGUF pairs `ficoco quantize` writes and compares it with `ficoco run`
# on the same files: prompt ids, image embeddings, logits at the last prompt position, greedy tokens.
#   tools/llamacpp-crosscheck/run.sh LLSRC FICOCO_BIN [WORK_DIR]
# LLSRC: a llama.cpp source tree (see build.sh; this project downloads nothing). Needs ../shared/fixtures
# beside the checkout (override with FIXTURES=DIR). Optional: SEVEN_B_TEXT and SEVEN_B_MMPROJ (a
# LLaVA-1.5-7B GGUF pair) are only loaded and run by llama.cpp (no comparison; random weights).
# Env: THREADS (default 2), LLBUILD (llama.cpp build directory, default WORK_DIR/llbuild).
# Fails (exit 1) when a checked comparison exceeds its stated tolerance; "report" rows are printed
# for the record (the known llama.cpp differences) and never fail.
set -euo pipefail
LLSRC=$1; FICOCO=$(realpath "$2"); WORK=${3:-$(mktemp -d)}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
FIX=${FIXTURES:-$REPO/../shared/fixtures}
T=${THREADS:-2}
mkdir -p "$WORK"; WORK=$(realpath "$WORK")
LLBUILD=${LLBUILD:-$WORK/llbuild}   # build directory of llama.cpp + driver (reused when up to date)
"$HERE/build.sh" "$LLSRC" "$LLBUILD" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; echo "FAIL: build"; exit 1; }
PLAIN=$LLBUILD/run_with_llamacpp          # llama.cpp as it is
CLSFIRST=$LLBUILD/run_with_llamacpp_clsfirst  # the same with the llava graph's CLS-last concat swapped
SYS="A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions."
status=0

# compare MODE LABEL LLAMA_BIN TEXT_GGUF MMPROJ IMAGE|- PROMPT N IDS_GGUF|- [compare.py options...]
# MODE: check (fails on exceeding the limits given) or report. Both engines get the same full
# prompt text (ficoco --template raw; its image placeholder is <image>, the driver's default
# marker). ficoco always loads the mmproj (its GGUF loader wants the pair); llama.cpp only with an image.
compare() {
  local mode=$1 label=$2 bin=$3 text=$4 mm=$5 img=$6 prompt=$7 n=$8 ids=$9; shift 9
  local fargs=(--mmproj "$mm") largs=() cargs=()
  if [ "$img" != - ]; then
    fargs+=(--image "$img"); largs=(--mmproj "$mm" --image "$img" --embd-out "$WORK/$label.llama.embd.f32")
    cargs=(--llama-embd "$WORK/$label.llama.embd.f32")
  fi
  [ "$ids" != - ] && cargs+=(--gguf "$ids")
  "$FICOCO" run --model "$text" "${fargs[@]}" --template raw --prompt "$prompt" --max-tokens "$n" --threads "$T" \
    --compute f32 --json --dump "$WORK/$label.ficoco.safetensors" >"$WORK/$label.ficoco.json" 2>"$WORK/$label.ficoco.err" \
    || { cat "$WORK/$label.ficoco.err"; echo "FAIL $label: ficoco run"; status=1; return 0; }
  "$bin" --model "$text" "${largs[@]}" --prompt "$prompt" -n "$n" -t "$T" --logits-out "$WORK/$label.llama.f32" \
    >"$WORK/$label.llama.json" 2>"$WORK/$label.llama.err" \
    || { cat "$WORK/$label.llama.err"; echo "FAIL $label: llama.cpp could not load or run it"; status=1; return 0; }
  local res
  if res=$(/usr/bin/python3 "$HERE/compare.py" --label "$label" --ficoco-json "$WORK/$label.ficoco.json" \
       --ficoco-dump "$WORK/$label.ficoco.safetensors" --llama-json "$WORK/$label.llama.json" \
       --llama-logits "$WORK/$label.llama.f32" "${cargs[@]}" "$@"); then
    echo "$mode ok: $res"
  elif [ "$mode" = report ]; then
    echo "report: $res"
  else
    echo "FAIL: $res"; status=1
  fi
}

# The number of CLIP blocks up to LLaVA's feature layer (what ficoco quantize stores): 23 for LLaVA-1.5.
feature_blocks() {
  python3 -c "import json,sys; c=json.load(open(sys.argv[1])); n=c['vision_config']['num_hidden_layers']; fl=c.get('vision_feature_layer',-2); print(n+1+fl if fl<0 else fl)" "$1"
}

# image_variants TAG TEXT MMPROJ IMAGE PROMPT N TOL: the image path four ways. llama.cpp as it is
# differs from ficoco (and from Hugging Face) twice: it runs block_count - 1 CLIP blocks (models/llava.cpp,
# unless clip.vision.feature_layer is set) and appends CLS after the patches (issue #25814). The mmproj
# copy *-fl.gguf sets clip.vision.feature_layer = [block_count] (ficoco reads it the same way); the
# clsfirst binary swaps the concat. With both, the engines must agree within TOL.
image_variants() {
  local tag=$1 text=$2 mm=$3 img=$4 prompt=$5 n=$6 tol=$7 blocks
  blocks=$(feature_blocks "$8")
  python3 "$HERE/gguf_set_feature_layer.py" "$mm" "${mm%.gguf}-fl.gguf" "$blocks"
  compare report "$tag-asis" "$PLAIN" "$text" "$mm" "$img" "$prompt" "$n" "$text"
  compare report "$tag-fl" "$PLAIN" "$text" "${mm%.gguf}-fl.gguf" "$img" "$prompt" "$n" "$text"
  compare report "$tag-clsfirst" "$CLSFIRST" "$text" "$mm" "$img" "$prompt" "$n" "$text"
  compare check "$tag-clsfirst-fl" "$CLSFIRST" "$text" "${mm%.gguf}-fl.gguf" "$img" "$prompt" "$n" "$text" \
    --max-logit-diff "$tol" --min-same-tokens "$n"
}

echo "== llava-tiny fixture: ficoco quantize -> llama.cpp"
TINY=$FIX/llava-tiny
python3 "$HERE/make_square_png.py" 56 "$WORK/square56.png"   # the fixture's image size: resizing is the identity
Q="What is shown in this image?"
for t in f16 q8_0 q4_0; do
  "$FICOCO" quantize "$TINY" "$WORK/tiny-$t" --type "$t" --tokenizer "$FIX/llama-tokenizer/tokenizer.model" --name tiny >/dev/null
done
# Text only. Prompt ids are recovered from ficoco's embeddings in the F16 file (the quantized files
# quantize token_embd too; the vocabulary is the same). Limits: F16 0.05 (seen 0.015); Q8_0/Q4_0
# 0.3/0.4 (seen 0.12/0.15, while quantization itself moves either engine's logits by 0.29/2.7).
compare check tiny-f16-text "$PLAIN" "$WORK/tiny-f16/tiny-f16.gguf" "$WORK/tiny-f16/mmproj-tiny-f16.gguf" - \
  "$SYS USER: $Q ASSISTANT:" 16 "$WORK/tiny-f16/tiny-f16.gguf" --max-logit-diff 0.05 --min-same-tokens 16
compare check tiny-q8_0-text "$PLAIN" "$WORK/tiny-q8_0/tiny-q8_0.gguf" "$WORK/tiny-q8_0/mmproj-tiny-f16.gguf" - \
  "$SYS USER: $Q ASSISTANT:" 16 - --ficoco-ref-dump "$WORK/tiny-f16-text.ficoco.safetensors" --max-logit-diff 0.3 --min-same-tokens 16
compare check tiny-q4_0-text "$PLAIN" "$WORK/tiny-q4_0/tiny-q4_0.gguf" "$WORK/tiny-q4_0/mmproj-tiny-f16.gguf" - \
  "$SYS USER: $Q ASSISTANT:" 16 - --ficoco-ref-dump "$WORK/tiny-f16-text.ficoco.safetensors" --max-logit-diff 0.4 --min-same-tokens 1
image_variants tiny-f16-image "$WORK/tiny-f16/tiny-f16.gguf" "$WORK/tiny-f16/mmproj-tiny-f16.gguf" "$WORK/square56.png" \
  "$SYS USER: <image>
$Q ASSISTANT:" 16 0.05 "$TINY/config.json"

echo "== assets/minillava (own tokenizer): the demo question"
MINI=$REPO/assets/minillava
"$FICOCO" quantize "$MINI" "$WORK/mini" --type f16 --name minillava >/dev/null
DQ=$'What shape is the red object?\nAnswer the question using a single word or phrase.'
image_variants mini-f16 "$WORK/mini/minillava-f16.gguf" "$WORK/mini/mmproj-minillava-f16.gguf" "$MINI/demo.png" \
  "$SYS USER: <image>
$DQ ASSISTANT:" 8 0.1 "$MINI/config.json"

if [ -n "${SEVEN_B_TEXT:-}" ]; then
  echo "== LLaVA-1.5-7B pair: llama.cpp loads and runs it (random weights: no comparison)"
  python3 "$HERE/make_square_png.py" 336 "$WORK/square336.png"
  if "$PLAIN" --model "$SEVEN_B_TEXT" --mmproj "$SEVEN_B_MMPROJ" --image "$WORK/square336.png" -n 4 -t "$T" \
       --prompt "$SYS USER: <image>
Describe the image. ASSISTANT:" >"$WORK/7b.llama.json" 2>"$WORK/7b.llama.err"; then
    grep -E '"image_tokens"|"prompt_tokens"|"generated_ids"|"timings"' "$WORK/7b.llama.json"
  else
    cat "$WORK/7b.llama.err"; echo "FAIL 7b: llama.cpp"; status=1
  fi
fi
if [ $status = 0 ]; then echo "PASS: llama.cpp agrees with ficoco within the stated tolerances"; else echo "FAIL (see above)"; fi
exit $status
