// One multimodal request end to end: splice the image features into the prompt
// embeddings where the image token stands, prefill, then decode token by token.
#pragma once
#include <functional>
#include <vector>

#include "engine/llava_model.h"
#include "engine/sampler.h"
#include "language/llama_decoder.h"

namespace ficoco {

struct GenerateRequest {
  std::vector<int> prompt_ids;              // may hold at most one image token id
  const Matrix* image_features = nullptr;   // [N, D] rows replacing the image token
  const std::vector<TokenMeta>* image_meta = nullptr;  // grid cells of those rows (optional)
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;
  bool keep_prefill_logits = false;         // all positions' logits (tests, dumps)
  bool keep_hidden_states = false;
  bool keep_step_logits = false;            // the full logits of every step (tests)
  std::function<void(int id)> on_token;     // streaming
  TextRunOptions text_options;              // reduction hooks
};

struct GenerateResult {
  std::vector<int> new_ids;
  Matrix inputs_embeds;              // [T, D] after splicing
  std::vector<float> logits_last;    // prompt's last position
  Matrix prefill_logits;             // [T', V] when asked (T' = rows that survived)
  std::vector<Matrix> hidden_states;
  std::vector<std::vector<float>> step_logits;  // with keep_step_logits: logits each id was chosen from
  int64_t prompt_tokens = 0, image_tokens = 0, text_tokens = 0;
  double prefill_s = 0, decode_s = 0;
  bool hit_eos = false;
  int64_t kv_cache_bytes = 0;
};

// Builds the spliced embeddings and token records (positions 0..T-1). Errors: more
// than one image token, image token without features, features without an image token.
void BuildPromptEmbeddings(const LlamaDecoder& decoder, const std::vector<int>& ids, int image_token_id,
                           const Matrix* image_features, const std::vector<TokenMeta>* image_meta, Matrix* embeds,
                           std::vector<TokenMeta>* meta);

GenerateResult Generate(GemmContext& gemm, const LlavaModel& model, const GenerateRequest& request);

}  // namespace ficoco
