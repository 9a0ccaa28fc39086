#!/usr/bin/env bash
# Trains ficoco's demo tokenizer (assets/tokenizer/ficoco-demo.model) with Debian's
# spm_train (sentencepiece 0.1.97) on the synthetic corpus from make_corpus.py.
# The settings mirror LLaMA's tokenizer (BPE, byte fallback, digits split, dummy
# prefix, identity normalization, whitespace kept as-is, unk/bos/eos = 0/1/2, no pad).
# Deterministic: fixed corpus seed, all sentences loaded in file order
# (input_sentence_size=0, so nothing is sampled or shuffled), one thread, fixed seed,
# and relative paths so the model's embedded trainer_spec does not name this machine.
#
# Usage: tools/tokenizer/train.sh [OUTPUT_MODEL] [VOCAB_SIZE]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/assets/tokenizer/ficoco-demo.model}"
vocab="${2:-4000}"
seed=20240501

command -v spm_train >/dev/null || { echo "spm_train not found (apt-get install sentencepiece)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/ficoco-tok-XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 "$here/make_corpus.py" "$work/corpus.txt" --seed "$seed" --megabytes 4

(
  cd "$work"
  spm_train \
    --input=corpus.txt \
    --model_prefix=ficoco-demo \
    --model_type=bpe \
    --vocab_size="$vocab" \
    --character_coverage=1.0 \
    --byte_fallback=true \
    --split_digits=true \
    --split_by_unicode_script=true \
    --split_by_whitespace=true \
    --split_by_number=true \
    --allow_whitespace_only_pieces=true \
    --add_dummy_prefix=true \
    --remove_extra_whitespaces=false \
    --normalization_rule_name=identity \
    --max_sentencepiece_length=16 \
    --max_sentence_length=4192 \
    --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
    --unk_surface=" ⁇ " \
    --input_sentence_size=0 \
    --shuffle_input_sentence=false \
    --num_threads=1 \
    --random_seed="$seed" \
    --minloglevel=1
)

mkdir -p "$(dirname "$out")"
cp "$work/ficoco-demo.model" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes, vocab $vocab)"
sha256sum "$out"
