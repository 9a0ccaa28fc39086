#include "engine/generate.h"

#include <algorithm>

#include "base/error.h"
#include "base/timer.h"

namespace ficoco {

void BuildPromptEmbeddings(const LlamaDecoder& decoder, const std::vector<int>& ids, int image_token_id,
                           const Matrix* image_features, const std::vector<TokenMeta>* image_meta, Matrix* embeds,
                           std::vector<TokenMeta>* meta) {
  const int64_t n_image_tokens = std::count(ids.begin(), ids.end(), image_token_id);
  if (n_image_tokens > 1) Fail("the prompt holds ", n_image_tokens, " <image> placeholders; one image per request is supported");
  if (n_image_tokens == 1 && image_features == nullptr) Fail("the prompt has an <image> placeholder but no image was given");
  if (n_image_tokens == 0 && image_features != nullptr) Fail("an image was given but the prompt has no <image> placeholder");
  std::vector<int> text_ids;
  for (int id : ids)
    if (id != image_token_id) text_ids.push_back(id);
  Matrix text = decoder.Embed(text_ids);
  const int64_t d = text.cols();
  const int64_t n_img = image_features ? image_features->rows() : 0;
  if (image_features && image_features->cols() != d)
    Fail("image features have dimension ", image_features->cols(), ", the language model expects ", d);
  embeds->Resize(static_cast<int64_t>(ids.size()) - n_image_tokens + n_img, d);
  meta->clear();
  int64_t row = 0, text_row = 0;
  for (int id : ids) {
    if (id == image_token_id) {
      for (int64_t i = 0; i < n_img; ++i, ++row) {
        std::copy_n(image_features->row(i), d, embeds->row(row));
        TokenMeta m{static_cast<int32_t>(row), -1, -1, static_cast<int32_t>(row), TokenRole::Visual};
        if (image_meta && static_cast<int64_t>(image_meta->size()) == n_img) {
          m.grid_row = (*image_meta)[static_cast<size_t>(i)].grid_row;
          m.grid_col = (*image_meta)[static_cast<size_t>(i)].grid_col;
        }
        meta->push_back(m);
      }
    } else {
      std::copy_n(text.row(text_row++), d, embeds->row(row));
      meta->push_back(TokenMeta{static_cast<int32_t>(row), -1, -1, static_cast<int32_t>(row), TokenRole::Text});
      ++row;
    }
  }
}

GenerateResult Generate(GemmContext& gemm, const LlavaModel& model, const GenerateRequest& req) {
  if (!model.has_text()) Fail("the language model was not loaded");
  if (req.max_new_tokens < 1) Fail("--max-tokens must be at least 1, got ", req.max_new_tokens);
  ValidateSamplingParams(req.sampling);
  const LlavaConfig& cfg = model.config();
  LlamaDecoder decoder(cfg.text, model.text());
  GenerateResult r;
  std::vector<TokenMeta> meta;
  BuildPromptEmbeddings(decoder, req.prompt_ids, cfg.image_token_index, req.image_features, req.image_meta,
                        &r.inputs_embeds, &meta);
  r.prompt_tokens = r.inputs_embeds.rows();
  r.image_tokens = req.image_features ? req.image_features->rows() : 0;
  r.text_tokens = r.prompt_tokens - r.image_tokens;
  const int64_t context = cfg.text.max_position_embeddings;
  if (r.prompt_tokens + req.max_new_tokens > context)
    Fail("prompt (", r.text_tokens, " text + ", r.image_tokens, " image tokens) plus --max-tokens ", req.max_new_tokens,
         " exceeds the model's context of ", context, " positions");

  Stopwatch sw;
  KvCache cache = decoder.NewCache(model.kv_cache());
  TextRunOptions opts = req.text_options;
  opts.keep_hidden_states = req.keep_hidden_states;
  TextForwardResult fwd = decoder.Forward(gemm, r.inputs_embeds, meta, cache, opts);
  r.hidden_states = std::move(fwd.hidden_states);
  Matrix last(1, fwd.normed.cols());
  std::copy_n(fwd.normed.row(fwd.normed.rows() - 1), fwd.normed.cols(), last.row(0));
  if (req.keep_prefill_logits) r.prefill_logits = decoder.Logits(gemm, fwd.normed);
  Matrix logits = decoder.Logits(gemm, last);
  r.prefill_s = sw.Seconds();
  r.logits_last.assign(logits.data(), logits.data() + logits.cols());

  sw.Restart();
  Sampler sampler(req.sampling);
  std::vector<int> history = req.prompt_ids;
  std::vector<float> step = r.logits_last;
  // Next position continues after the original prompt length, whatever was reduced.
  int32_t next_pos = static_cast<int32_t>(r.prompt_tokens);
  for (int t = 0; t < req.max_new_tokens; ++t) {
    if (req.keep_step_logits) r.step_logits.push_back(step);
    const int id = sampler.Next(step, history);
    r.new_ids.push_back(id);
    history.push_back(id);
    if (req.on_token) req.on_token(id);
    if (req.stop_at_eos && id == cfg.text.eos_token_id) {
      r.hit_eos = true;
      break;
    }
    if (t + 1 == req.max_new_tokens) break;
    Matrix x = decoder.Embed({id});
    std::vector<TokenMeta> m{TokenMeta{next_pos, -1, -1, next_pos, TokenRole::Text}};
    ++next_pos;
    TextRunOptions step_options;
    step_options.compact_positions = req.text_options.compact_positions;
    TextForwardResult f = decoder.Forward(gemm, std::move(x), std::move(m), cache, step_options);
    Matrix lg = decoder.Logits(gemm, f.normed);
    step.assign(lg.data(), lg.data() + lg.cols());
  }
  r.decode_s = sw.Seconds();
  r.kv_cache_bytes = cache.Bytes();
  return r;
}

}  // namespace ficoco
