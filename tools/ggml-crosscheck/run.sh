#!/usr/bin/env bash
# Cross-checks `ficoco quantize` output with ggml's own GGUF reader and dequantizer.
#   tools/ggml-crosscheck/run.sh GGML_SRC FICOCO_BIN SRC_MODEL_DIR TOKENIZER [WORK_DIR]
# GGML_SRC: a ggml source tree (github.com/ggml-org/ggml; this project fetches nothing itself).
# Quantizes SRC_MODEL_DIR to q8_0 and q4_0 pairs, loads every file with ggml, and compares the
# text model's tensors, as ggml dequantizes them, with the source weights.
set -euo pipefail
GGML=$1; FICOCO=$2; SRC=$3; TOK=$4; WORK=${5:-$(mktemp -d)}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK/obj"
DEFS=(-DGGML_VERSION='"crosscheck"' -DGGML_COMMIT='"unknown"' -DNDEBUG)
for f in ggml.c ggml-quants.c ggml-alloc.c; do
  gcc -O1 -c -I"$GGML/include" -I"$GGML/src" -D_GNU_SOURCE "${DEFS[@]}" "$GGML/src/$f" -o "$WORK/obj/$f.o"
done
for f in ggml.cpp gguf.cpp ggml-threading.cpp ggml-backend.cpp ggml-backend-meta.cpp; do
  [ -f "$GGML/src/$f" ] || continue  # older trees lack some of these
  g++ -std=c++17 -O1 -c -I"$GGML/include" -I"$GGML/src" "${DEFS[@]}" "$GGML/src/$f" -o "$WORK/obj/$f.o"
done
g++ -std=c++17 -O1 -I"$GGML/include" "$HERE/dump_with_ggml.cpp" "$WORK"/obj/*.o -o "$WORK/dump_with_ggml" -lpthread -lm
status=0
for type in q8_0:0.02 q4_0:0.15; do
  t=${type%%:*}; limit=${type##*:}
  "$FICOCO" quantize "$SRC" "$WORK/$t" --type "$t" --tokenizer "$TOK" >/dev/null
  for g in "$WORK/$t"/*.gguf; do
    "$WORK/dump_with_ggml" "$g" > "$g.ggml.txt" || { echo "ggml could not load $g"; status=1; }
    echo "ggml loaded $g: $(head -1 "$g.ggml.txt")"
  done
  text=$(ls "$WORK/$t"/*.gguf | grep -v mmproj)
  mkdir -p "$WORK/$t/dump"
  "$WORK/dump_with_ggml" "$text" "$WORK/$t/dump" >/dev/null
  echo "== $t: ggml's dequantized text weights vs the source (limit $limit)"
  /usr/bin/python3 "$HERE/compare_to_source.py" "$SRC" "$WORK/$t/dump" --max-rel-err "$limit" | tail -2 || status=1
done
exit $status
