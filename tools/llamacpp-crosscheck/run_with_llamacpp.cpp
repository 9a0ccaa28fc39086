// run_with_llamacpp: runs a llama.cpp GGUF pair through llama.cpp's public C APIs (llama.h, mtmd.h,
// mtmd-helper.h) so its tokens, logits and timings can be set beside `ficoco run` on the same files.
// Written for this project against the public headers only; build with build.sh.
//
//   run_with_llamacpp --model TEXT.gguf [--mmproj MM.gguf --image IMG] --prompt TEXT [-n N] [-t THREADS]
//                     [--logits-out FILE] [--embd-out FILE] [--marker STR] [--ctx N] [--batch N] [--ubatch N]
//                     [--flash-attn auto|on|off] [--warmup] [--verbose]
//   run_with_llamacpp --quantize IN.gguf OUT.gguf TYPE [-t THREADS]     (TYPE: q4_k_m, q4_0, q8_0, ...)
//
// --prompt is the whole prompt text (no template is applied); with --image it must hold the image
// marker (--marker, default "<image>", the placeholder ficoco's llava-1.5 template uses). Without
// --image the prompt is tokenized with llama_tokenize (BOS added, special tokens parsed) and decoded
// as text only. --embd-out writes the image's projected embeddings (the LLM's input rows for the
// image, n_image_tokens x n_embd f32) as mtmd_get_output_embd returns them. Greedy decoding of up to N tokens (stops early at an end-of-generation token, as
// `ficoco run` stops at EOS). Prints one JSON object on stdout; llama.cpp's log goes to stderr only
// with --verbose.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "run_with_llamacpp: %s\n", msg.c_str());
  std::exit(1);
}

bool g_verbose = false;
void LogCallback(enum ggml_log_level level, const char* text, void*) {
  if (g_verbose || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one.
size_t Utf8Length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return n;
}

// A JSON string; bytes that are not valid UTF-8 (a byte-fallback piece cut off at the end, or
// the random models' stray byte tokens) become U+FFFD.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Length(s, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (n > 1) {
      out.append(s, i, n);
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
    i += n;
  }
  return out + "\"";
}

std::string JsonInts(const std::vector<llama_token>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

struct Args {
  std::string model, mmproj, image, prompt, logits_out, embd_out, marker = "<image>", flash_attn = "auto";
  bool warmup = false;
  int n = 16, threads = 2, ctx = 0, batch = 2048, ubatch = 512;
  std::vector<std::string> quantize;  // IN OUT TYPE
};

Args Parse(int argc, char** argv) {
  Args a;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) Die(std::string("missing value after ") + argv[i]);
    return argv[++i];
  };
  bool have_prompt = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--model") a.model = need(i);
    else if (k == "--mmproj") a.mmproj = need(i);
    else if (k == "--image") a.image = need(i);
    else if (k == "--prompt") { a.prompt = need(i); have_prompt = true; }
    else if (k == "-n") a.n = std::atoi(need(i).c_str());
    else if (k == "-t") a.threads = std::atoi(need(i).c_str());
    else if (k == "--logits-out") a.logits_out = need(i);
    else if (k == "--embd-out") a.embd_out = need(i);
    else if (k == "--marker") a.marker = need(i);
    else if (k == "--ctx") a.ctx = std::atoi(need(i).c_str());
    else if (k == "--batch") a.batch = std::atoi(need(i).c_str());
    else if (k == "--ubatch") a.ubatch = std::atoi(need(i).c_str());
    else if (k == "--flash-attn") a.flash_attn = need(i);
    else if (k == "--verbose") g_verbose = true;
    else if (k == "--warmup") a.warmup = true;
    else if (k == "--quantize") {
      for (int j = 0; j < 3; ++j) a.quantize.push_back(need(i));
    } else if (k == "-h" || k == "--help") {
      std::puts("run_with_llamacpp --model TEXT.gguf [--mmproj MM.gguf --image IMG] --prompt TEXT [-n N] [-t THREADS]\n"
                "                  [--logits-out FILE] [--embd-out FILE] [--marker STR] [--ctx N] [--batch N] [--ubatch N]\n"
                "                  [--flash-attn auto|on|off] [--warmup] [--verbose]\n"
                "run_with_llamacpp --quantize IN.gguf OUT.gguf TYPE [-t THREADS]");
      std::exit(0);
    } else {
      Die("unknown argument " + k);
    }
  }
  if (!a.quantize.empty()) return a;
  if (a.model.empty() || !have_prompt) Die("--model and --prompt are required (see --help)");
  if (a.image.empty() != a.mmproj.empty()) Die("--image and --mmproj go together");
  if (a.n < 1) Die("-n must be at least 1");
  return a;
}

int Quantize(const Args& a) {
  struct Named { const char* name; llama_ftype type; };
  static const Named kTypes[] = {
      {"f32", LLAMA_FTYPE_ALL_F32},        {"f16", LLAMA_FTYPE_MOSTLY_F16},       {"bf16", LLAMA_FTYPE_MOSTLY_BF16},
      {"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},   {"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
      {"q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},   {"q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},     {"q2_k", LLAMA_FTYPE_MOSTLY_Q2_K},
      {"q3_k_m", LLAMA_FTYPE_MOSTLY_Q3_K_M}, {"q4_k_s", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"q4_k_m", LLAMA_FTYPE_MOSTLY_Q4_K_M},
      {"q5_k_s", LLAMA_FTYPE_MOSTLY_Q5_K_S}, {"q5_k_m", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"q6_k", LLAMA_FTYPE_MOSTLY_Q6_K},
  };
  std::string t = a.quantize[2];
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const Named* found = nullptr;
  for (const Named& n : kTypes) if (t == n.name) found = &n;
  if (!found) Die("unknown quantization type " + a.quantize[2]);
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.ftype = found->type;
  p.nthread = a.threads;
  const auto t0 = Clock::now();
  const uint32_t rc = llama_model_quantize(a.quantize[0].c_str(), a.quantize[1].c_str(), &p);
  if (rc != 0) Die("llama_model_quantize failed (" + std::to_string(rc) + ")");
  std::printf("{\"quantized\": %s, \"out\": %s, \"type\": %s, \"seconds\": %.1f}\n", JsonString(a.quantize[0]).c_str(),
              JsonString(a.quantize[1]).c_str(), JsonString(found->name).c_str(), MsSince(t0) / 1000);
  return 0;
}

std::string Piece(const llama_vocab* vocab, llama_token id) {
  char buf[256];
  const int n = llama_token_to_piece(vocab, id, buf, sizeof buf, 0, false);
  if (n < 0) Die("token piece too long");
  return std::string(buf, n);
}

llama_token Argmax(const float* logits, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) if (logits[i] > logits[best]) best = i;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  llama_log_set(LogCallback, nullptr);
  mtmd_helper_log_set(LogCallback, nullptr);
  llama_backend_init();
  if (!a.quantize.empty()) return Quantize(a);

  auto t_load = Clock::now();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(a.model.c_str(), mp);
  if (!model) Die("llama.cpp could not load the text model " + a.model);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = a.ctx;  // 0 = the model's context length
  cp.n_batch = a.batch;
  cp.n_ubatch = a.ubatch;
  cp.n_threads = a.threads;
  cp.n_threads_batch = a.threads;
  cp.no_perf = false;
  if (a.flash_attn == "on") cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
  else if (a.flash_attn == "off") cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  else if (a.flash_attn == "auto") cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
  else Die("--flash-attn: auto, on or off");
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) Die("llama_init_from_model failed");

  mtmd_context* mctx = nullptr;
  if (!a.mmproj.empty()) {
    mtmd_context_params mtp = mtmd_context_params_default();
    mtp.use_gpu = false;
    mtp.print_timings = false;
    mtp.n_threads = a.threads;
    mtp.media_marker = a.marker.c_str();
    mtp.warmup = a.warmup;  // a dummy encode at load (allocates the vision graph's buffers up front)
    mctx = mtmd_init_from_file(a.mmproj.c_str(), model, mtp);
    if (!mctx) Die("llama.cpp (mtmd) could not load the mmproj " + a.mmproj);
  }
  const double load_ms = MsSince(t_load);

  // Tokenize: the text parts' ids and the image's token count.
  std::vector<std::vector<llama_token>> text_parts;
  size_t image_tokens = 0;
  llama_pos n_past = 0;
  double encode_ms = 0, prefill_ms = 0, tokenize_ms = 0;
  size_t prompt_tokens = 0;
  auto t_first = Clock::now();
  if (mctx) {
    auto t0 = Clock::now();
    mtmd_bitmap* bmp = mtmd_helper_bitmap_init_from_file(mctx, a.image.c_str());
    if (!bmp) Die("could not read image " + a.image);
    mtmd_input_chunks* chunks = mtmd_input_chunks_init();
    mtmd_input_text text{a.prompt.c_str(), /*add_special=*/true, /*parse_special=*/true};
    const mtmd_bitmap* bmps[] = {bmp};
    const int32_t rc = mtmd_tokenize(mctx, chunks, &text, bmps, 1);
    if (rc != 0) Die("mtmd_tokenize failed (" + std::to_string(rc) + "): does the prompt hold the marker " + a.marker + "?");
    tokenize_ms = MsSince(t0);
    const size_t n_chunks = mtmd_input_chunks_size(chunks);
    for (size_t i = 0; i < n_chunks; ++i) {
      const mtmd_input_chunk* ch = mtmd_input_chunks_get(chunks, i);
      const bool last = i + 1 == n_chunks;
      if (mtmd_input_chunk_get_type(ch) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
        size_t n = 0;
        const llama_token* ids = mtmd_input_chunk_get_tokens_text(ch, &n);
        text_parts.emplace_back(ids, ids + n);
        prompt_tokens += n;
        auto t = Clock::now();
        llama_pos np = n_past;
        if (mtmd_helper_eval_chunk_single(mctx, ctx, ch, n_past, 0, a.batch, last, &np) != 0) Die("decoding a text chunk failed");
        prefill_ms += MsSince(t);
        n_past = np;
      } else if (mtmd_input_chunk_get_type(ch) == MTMD_INPUT_CHUNK_TYPE_IMAGE) {
        image_tokens += mtmd_input_chunk_get_n_tokens(ch);
        prompt_tokens += mtmd_input_chunk_get_n_tokens(ch);
        auto t = Clock::now();
        if (mtmd_encode_chunk(mctx, ch) != 0) Die("mtmd_encode_chunk failed");
        encode_ms += MsSince(t);
        if (!a.embd_out.empty()) {  // the projector's output: n_tokens x n_embd f32, row-major
          const size_t count = mtmd_input_chunk_get_n_tokens(ch) * static_cast<size_t>(llama_model_n_embd(model));
          FILE* f = std::fopen(a.embd_out.c_str(), "wb");
          if (!f || std::fwrite(mtmd_get_output_embd(mctx), sizeof(float), count, f) != count) Die("cannot write " + a.embd_out);
          std::fclose(f);
        }
        t = Clock::now();
        llama_pos np = n_past;
        if (mtmd_helper_decode_image_chunk(mctx, ctx, ch, mtmd_get_output_embd(mctx), n_past, 0, a.batch, &np) != 0)
          Die("decoding the image embeddings failed");
        prefill_ms += MsSince(t);
        n_past = np;
        if (last) Die("the prompt ends with the image; put text after the marker");
      } else {
        Die("unsupported chunk type (audio?)");
      }
    }
    mtmd_input_chunks_free(chunks);
    mtmd_bitmap_free(bmp);
  } else {
    auto t0 = Clock::now();
    const int need = -llama_tokenize(vocab, a.prompt.c_str(), static_cast<int32_t>(a.prompt.size()), nullptr, 0, true, true);
    std::vector<llama_token> ids(need);
    if (llama_tokenize(vocab, a.prompt.c_str(), static_cast<int32_t>(a.prompt.size()), ids.data(), need, true, true) != need)
      Die("tokenization failed");
    tokenize_ms = MsSince(t0);
    text_parts.push_back(ids);
    prompt_tokens = ids.size();
    auto t = Clock::now();
    for (size_t i = 0; i < ids.size(); i += a.batch) {
      const int n = static_cast<int>(std::min<size_t>(a.batch, ids.size() - i));
      llama_batch b = llama_batch_init(n, 0, 1);
      for (int j = 0; j < n; ++j) {
        b.token[j] = ids[i + j];
        b.pos[j] = static_cast<llama_pos>(i + j);
        b.n_seq_id[j] = 1;
        b.seq_id[j][0] = 0;
        b.logits[j] = (i + j + 1 == ids.size());
      }
      b.n_tokens = n;
      if (llama_decode(ctx, b) != 0) Die("llama_decode failed on the prompt");
      llama_batch_free(b);
    }
    prefill_ms = MsSince(t);
    n_past = static_cast<llama_pos>(ids.size());
  }
  const double first_token_ms = MsSince(t_first);

  const float* logits = llama_get_logits_ith(ctx, -1);
  if (!logits) Die("no logits for the last prompt position");
  if (!a.logits_out.empty()) {
    FILE* f = std::fopen(a.logits_out.c_str(), "wb");
    if (!f || std::fwrite(logits, sizeof(float), n_vocab, f) != static_cast<size_t>(n_vocab)) Die("cannot write " + a.logits_out);
    std::fclose(f);
  }

  // Greedy decode: the first token from the prompt's logits, then one llama_decode per further token.
  std::vector<llama_token> gen;
  std::string text;
  bool eos = false;
  llama_token tok = Argmax(logits, n_vocab);
  auto t_dec = Clock::now();
  int decode_steps = 0;
  while (true) {
    gen.push_back(tok);
    if (llama_vocab_is_eog(vocab, tok)) { eos = true; break; }
    text += Piece(vocab, tok);
    if (static_cast<int>(gen.size()) >= a.n) break;
    llama_batch b = llama_batch_get_one(&tok, 1);
    if (llama_decode(ctx, b) != 0) Die("llama_decode failed while decoding");
    ++n_past;
    ++decode_steps;
    tok = Argmax(llama_get_logits_ith(ctx, -1), n_vocab);
  }
  const double decode_ms = MsSince(t_dec);

  std::string parts = "[";
  for (size_t i = 0; i < text_parts.size(); ++i) parts += (i ? "," : "") + JsonInts(text_parts[i]);
  parts += "]";
  std::printf("{\n  \"engine\": \"llama.cpp\",\n  \"model\": %s,\n  \"mmproj\": %s,\n  \"n_vocab\": %d,\n"
              "  \"prompt_text_ids\": %s,\n  \"image_tokens\": %zu,\n  \"prompt_tokens\": %zu,\n"
              "  \"generated_ids\": %s,\n  \"answer\": %s,\n  \"stopped_at_eos\": %s,\n"
              "  \"timings\": {\"load_ms\": %.1f, \"tokenize_ms\": %.2f, \"image_encode_ms\": %.1f, \"prefill_ms\": %.1f, "
              "\"prefill_tokens_per_s\": %.2f, \"time_to_first_token_ms\": %.1f, \"decode_ms\": %.1f, \"decode_steps\": %d, "
              "\"decode_tokens_per_s\": %.3f, \"total_ms\": %.1f},\n  \"threads\": %d, \"flash_attn\": %s\n}\n",
              JsonString(a.model).c_str(), JsonString(a.mmproj).c_str(), n_vocab, parts.c_str(), image_tokens, prompt_tokens,
              JsonInts(gen).c_str(), JsonString(text).c_str(), eos ? "true" : "false", load_ms, tokenize_ms, encode_ms,
              prefill_ms, prefill_ms > 0 ? (prompt_tokens - 0.0) / (prefill_ms / 1000) : 0.0, first_token_ms, decode_ms,
              decode_steps, decode_ms > 0 ? decode_steps / (decode_ms / 1000) : 0.0, first_token_ms + decode_ms, a.threads,
              JsonString(a.flash_attn).c_str());
  if (mctx) mtmd_free(mctx);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
