// Loads a GGUF file with ggml's own reader (gguf_init_from_file, which validates the header,
// metadata, tensor offsets and alignment and reads every tensor), prints its metadata and
// tensor list, and, given OUT_DIR, writes each tensor dequantized by ggml's type traits to
// OUT_DIR/<name>.f32. Built against a ggml source tree by run.sh; not part of ficoco's build.
#include <cstdio>
#include <string>
#include <vector>
#include "ggml.h"
#include "gguf.h"
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  ggml_context* ctx = nullptr;
  gguf_init_params p{false, &ctx};
  gguf_context* g = gguf_init_from_file(argv[1], p);
  if (!g) { printf("GGML FAILED TO LOAD %s\n", argv[1]); return 1; }
  printf("version %u alignment %zu kv %lld tensors %lld data_offset %zu\n", gguf_get_version(g),
         gguf_get_alignment(g), (long long)gguf_get_n_kv(g), (long long)gguf_get_n_tensors(g), gguf_get_data_offset(g));
  for (int64_t i = 0; i < gguf_get_n_kv(g); ++i) {
    const char* key = gguf_get_key(g, i);
    gguf_type t = gguf_get_kv_type(g, i);
    printf("kv %s %s", key, gguf_type_name(t));
    if (t == GGUF_TYPE_STRING) printf(" = %s", gguf_get_val_str(g, i));
    else if (t == GGUF_TYPE_UINT32) printf(" = %u", gguf_get_val_u32(g, i));
    else if (t == GGUF_TYPE_INT32) printf(" = %d", gguf_get_val_i32(g, i));
    else if (t == GGUF_TYPE_FLOAT32) printf(" = %g", gguf_get_val_f32(g, i));
    else if (t == GGUF_TYPE_BOOL) printf(" = %d", (int)gguf_get_val_bool(g, i));
    else if (t == GGUF_TYPE_ARRAY) printf(" [%s x %zu]", gguf_type_name(gguf_get_arr_type(g, i)), gguf_get_arr_n(g, i));
    printf("\n");
  }
  const char* out = argc > 2 ? argv[2] : nullptr;
  for (ggml_tensor* t = ggml_get_first_tensor(ctx); t; t = ggml_get_next_tensor(ctx, t)) {
    printf("tensor %s %s [%lld %lld %lld %lld]\n", t->name, ggml_type_name(t->type), (long long)t->ne[0],
           (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    if (!out) continue;
    const int64_t n = ggml_nelements(t);
    std::vector<float> f(n);
    const ggml_type_traits* tr = ggml_get_type_traits(t->type);
    if (t->type == GGML_TYPE_F32) { for (int64_t i = 0; i < n; ++i) f[i] = ((float*)t->data)[i]; }
    else if (tr->to_float) tr->to_float(t->data, f.data(), n);
    else { printf("  no to_float\n"); continue; }
    std::string path = std::string(out) + "/" + t->name + ".f32";
    FILE* fp = fopen(path.c_str(), "wb"); fwrite(f.data(), 4, n, fp); fclose(fp);
  }
  gguf_free(g);
  return 0;
}
