#!/bin/bash
# One `ficoco eval` shard per Slurm array task; a final dependent job merges and scores.
#
#   sbatch --array=0-7 deploy/slurm-eval.sh          # 8 shards, then:
#   sbatch --dependency=afterok:<array job id> deploy/slurm-eval.sh merge
#
# Settings come from the environment (exported by sbatch by default); see deploy/README.md.
#SBATCH --job-name=ficoco-eval
#SBATCH --cpus-per-task=16
#SBATCH --mem=32G
#SBATCH --time=24:00:00
#SBATCH --output=ficoco-eval-%A_%a.log
#SBATCH --requeue
set -euo pipefail

: "${FICOCO:=ficoco}"                 # the ficoco binary
: "${MODEL:?set MODEL to the llava-hf model directory}"
: "${BENCH:?set BENCH (gqa, pope, textvqa, sqa, mme, mmbench, ...)}"
: "${QUESTIONS:?set QUESTIONS to the questions file}"
: "${IMAGES:?set IMAGES to the image folder}"
: "${OUT:?set OUT to a shared output directory}"
: "${ANNOTATIONS:=}"                  # ground truth (empty: MME/MMBench/judged benchmarks)
: "${METHOD_ARGS:=--method none}"     # e.g. "--method ficoco-v --keep 64"
: "${EXTRA_ARGS:=}"                   # more eval options, e.g. "--tokenizer FILE --compute f32"
: "${SHARDS:=${SLURM_ARRAY_TASK_COUNT:-1}}"

common=(--model "$MODEL" --bench "$BENCH" --questions "$QUESTIONS" --images "$IMAGES" --out "$OUT"
        --threads "${SLURM_CPUS_PER_TASK:-0}")
[ -n "$ANNOTATIONS" ] && common+=(--annotations "$ANNOTATIONS")

if [ "${1:-}" = merge ]; then
  shards=()
  for ((i = 0; i < SHARDS; i++)); do shards+=("$OUT/answers.shard-$i-of-$SHARDS.jsonl"); done
  "$FICOCO" eval-merge --bench "$BENCH" --questions "$QUESTIONS" --out "$OUT/answers.jsonl" "${shards[@]}"
  # Everything is answered now: this only scores and writes score.json / report.md.
  # shellcheck disable=SC2086
  exec "$FICOCO" eval "${common[@]}" $METHOD_ARGS $EXTRA_ARGS
fi

# A preempted or requeued task resumes from its own shard file (answered ids are skipped).
# shellcheck disable=SC2086
exec "$FICOCO" eval "${common[@]}" --shard "${SLURM_ARRAY_TASK_ID:?run as an array job}/$SHARDS" --progress lines $METHOD_ARGS $EXTRA_ARGS
