#!/usr/bin/env bash
# Builds llama.cpp (ggml base + CPU backend, libllama, libmtmd) from a source tree and links our
# driver run_with_llamacpp.cpp against it, as one static binary OUT/run_with_llamacpp.
#   tools/llamacpp-crosscheck/build.sh LLSRC OUT
# LLSRC: a directory holding llama.cpp's include/ src/ tools/mtmd/ vendor/ and ggml's include/ src/,
# either laid out as upstream llama.cpp (LLSRC/ggml/...) or as ollama vendors it
# (LLSRC/llama/llama.cpp/... and LLSRC/ml/backend/ggml/ggml/...). Nothing is downloaded.
# The flags follow what llama.cpp's own CMake sets for a native x86 build with GCC
# (GGML_NATIVE=ON: -march=native; GGML_OPENMP, GGML_LLAMAFILE and GGML_CPU_REPACK default ON;
# the CPU backend registered statically with GGML_USE_CPU). We write a ninja file rather than use
# CMake because the vendored trees lack the top-level CMakeLists.txt. Env: JOBS (default 2),
# OPT (default -O3), CXX/CC (default g++/gcc), ccache used when present.
# Also links OUT/run_with_llamacpp_clsfirst, an experiment: the same build except that a copy of
# tools/mtmd/models/llava.cpp (OUT/clsfirst/llava.cpp; the source tree is not touched) puts CLIP's
# class embedding before the patches, as CLIP and llama.cpp's own position/patch inputs assume
# (llama.cpp issue #25814, PR #25844: since the graph refactor the llava graph appends it after them).
set -euo pipefail
SRC=$(cd "$1" && pwd); OUT=$2
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -d "$SRC/llama/llama.cpp/src" ]; then LL=$SRC/llama/llama.cpp; GG=$SRC/ml/backend/ggml/ggml
else LL=$SRC; GG=$SRC/ggml; fi
[ -f "$LL/include/llama.h" ] && [ -f "$GG/include/ggml.h" ] && [ -f "$LL/tools/mtmd/mtmd.h" ] \
  || { echo "build.sh: no llama.cpp/ggml tree under $SRC" >&2; exit 1; }
CC=${CC:-gcc}; CXX=${CXX:-g++}; OPT=${OPT:--O3}; JOBS=${JOBS:-2}
LAUNCH=""; command -v ccache >/dev/null && LAUNCH=ccache
DEFS="-DNDEBUG -D_XOPEN_SOURCE=600 -D_GNU_SOURCE -DGGML_SCHED_MAX_COPIES=4 -DGGML_VERSION=\\\"crosscheck\\\" -DGGML_COMMIT=\\\"unknown\\\""
ARCH="-march=native -fopenmp"
CPUDEFS="-DGGML_USE_OPENMP -DGGML_USE_LLAMAFILE -DGGML_USE_CPU_REPACK"
GI="-I$GG/include -I$GG/src"
{
  echo "cflags = $OPT $ARCH -std=c11 -pthread $DEFS $GI"
  echo "cxxflags = $OPT $ARCH -std=c++17 -pthread $DEFS $GI"
  echo "rule cc"
  echo "  command = $LAUNCH $CC -MMD -MF \$out.d \$cflags \$extra -c \$in -o \$out"
  echo "  depfile = \$out.d"
  echo "  deps = gcc"
  echo "rule cxx"
  echo "  command = $LAUNCH $CXX -MMD -MF \$out.d \$cxxflags \$extra -c \$in -o \$out"
  echo "  depfile = \$out.d"
  echo "  deps = gcc"
  echo "rule link"
  echo "  command = $CXX $OPT $ARCH -pthread \$in -o \$out -lm -ldl"
  objs=()
  add() {  # add RULE SRCFILE OBJNAME EXTRA_FLAGS
    echo "build obj/$3.o: $1 $2"; [ -n "${4:-}" ] && echo "  extra = $4"; objs+=("obj/$3.o"); return 0; }
  for f in ggml.c ggml-alloc.c ggml-quants.c; do add cc "$GG/src/$f" "ggml/$f"; done
  for f in ggml.cpp ggml-backend.cpp ggml-opt.cpp ggml-threading.cpp gguf.cpp; do add cxx "$GG/src/$f" "ggml/$f"; done
  add cxx "$GG/src/ggml-backend-reg.cpp" ggml/ggml-backend-reg.cpp "-DGGML_USE_CPU"
  C="$GG/src/ggml-cpu"; CI="-I$C $CPUDEFS"
  for f in ggml-cpu.c quants.c arch/x86/quants.c; do add cc "$C/$f" "cpu/$f" "$CI"; done
  for f in ggml-cpu.cpp repack.cpp hbm.cpp traits.cpp amx/amx.cpp amx/mmq.cpp binary-ops.cpp \
           unary-ops.cpp vec.cpp ops.cpp arch/x86/repack.cpp llamafile/sgemm.cpp; do
    add cxx "$C/$f" "cpu/$f" "$CI"; done
  LI="-I$LL/include -I$LL/src"
  for f in "$LL"/src/*.cpp "$LL"/src/models/*.cpp; do add cxx "$f" "llama/${f#$LL/src/}" "$LI"; done
  MI="$LI -I$LL/tools/mtmd -I$LL/vendor"
  for f in "$LL"/tools/mtmd/*.cpp "$LL"/tools/mtmd/models/*.cpp; do add cxx "$f" "mtmd/${f#$LL/tools/mtmd/}" "$MI"; done
  add cxx "$HERE/run_with_llamacpp.cpp" driver "-I$LL/include -I$LL/tools/mtmd -Wall -Wextra"
  echo "build run_with_llamacpp: link ${objs[*]}"
  echo "build obj/clsfirst-llava.o: cxx $OUT/clsfirst/llava.cpp"
  echo "  extra = $MI -I$LL/tools/mtmd/models"
  echo "build run_with_llamacpp_clsfirst: link ${objs[*]/obj\/mtmd\/models\/llava.cpp.o/obj/clsfirst-llava.o}"
} > "$OUT/build.ninja"
mkdir -p "$OUT/clsfirst"
sed 's/ggml_concat(ctx0, inp, model.class_embedding, 1)/ggml_concat(ctx0, model.class_embedding, inp, 1)/' \
  "$LL/tools/mtmd/models/llava.cpp" > "$OUT/clsfirst/llava.cpp.new"
cmp -s "$OUT/clsfirst/llava.cpp.new" "$LL/tools/mtmd/models/llava.cpp" && echo "note: llava.cpp has no CLS-last concat (fixed upstream?); clsfirst binary = plain" >&2
cmp -s "$OUT/clsfirst/llava.cpp.new" "$OUT/clsfirst/llava.cpp" || mv "$OUT/clsfirst/llava.cpp.new" "$OUT/clsfirst/llava.cpp"
rm -f "$OUT/clsfirst/llava.cpp.new"
nice -n 10 ninja -C "$OUT" -j "$JOBS"
echo "built $OUT/run_with_llamacpp and $OUT/run_with_llamacpp_clsfirst"
