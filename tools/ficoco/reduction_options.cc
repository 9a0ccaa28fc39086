#include "reduction_options.h"

namespace ficoco::cli {

ReductionParams ReductionArgs::ParamsFor(const MethodInfo& method) const {
  ReductionParams p = params;
  p.preset = ParseFicocoPreset(preset);
  p.positions = positions == "auto" ? method.positions : ParsePositionPolicy(positions);
  p.Validate();
  return p;
}

namespace {

void AddMethodAndBudget(CLI::App* sub, ReductionArgs& a) {
  sub->add_option("--method", a.method,
                  "Token reduction: none, ficoco-v, ficoco-l, ficoco-vl or a baseline (`ficoco methods` lists them all)")
      ->capture_default_str();
  sub->add_option("--keep", a.keep,
                  "Budget: visual tokens reaching the LLM (methods in or after the encoder) or their mean over the LLM "
                  "layers (methods in the LLM)");
  sub->add_option("--tflops", a.tflops,
                  "Budget: target LLM prefill TFLOPs for this prompt (LLM-Viewer count, see `ficoco flops`); the "
                  "largest --keep that fits is used");
}

void AddHyperparameters(CLI::App* sub, ReductionArgs& a) {
  sub->add_option("--ficoco-preset", a.preset,
                  "paper: the equations as written; reference-code: the official code's choices (swapped lambda, "
                  "summed logits, one K per layer, additive compression in the LLM, later start layers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"paper", "reference-code"}));
  ReductionParams& p = a.params;
  sub->add_option("--lambda", p.lambda, "FiCoCo-V filter: weight of the patch-redundancy term (paper preset; on the [CLS] term in reference-code)")
      ->capture_default_str();
  sub->add_option("--beta", p.beta, "FiCoCo-L filter: weight of the image-image term against the image-text term")->capture_default_str();
  sub->add_option("--gamma", p.gamma, "FiCoCo-L correlate: weight of direct against through-the-text correlation")->capture_default_str();
  sub->add_option("--epsilon", p.epsilon, "Quantile for token-adaptive targets (lower spreads a token over more targets)")
      ->capture_default_str();
  sub->add_option("--penalty", p.penalty, "FiCoCo-V local-penalty coefficient (1 = off)")->capture_default_str();
  sub->add_option("--window", p.window, "FiCoCo-V local-penalty window side, in patches")->capture_default_str();
  sub->add_option("--vision-start", p.vision_start,
                  "First reducing CLIP layer, 0-based (default: preset's, 11 paper / 12 reference-code of 24, scaled to depth)");
  sub->add_option("--llm-start", p.llm_start,
                  "First reducing LLM layer, 0-based (default: preset's, 3 paper / 5 reference-code of 32, scaled to depth)");
  sub->add_option("--vl-split", p.vl_split, "FiCoCo-VL: share of the removed visual tokens removed in the encoder")
      ->capture_default_str();
  sub->add_flag("--proportional-attention,!--no-proportional-attention", p.proportional_attention,
                "ToMe: add log(size) of merged tokens to the attention logits of later layers (default on)");
  sub->add_flag("--evit-fuse,!--no-evit-fuse", p.evit_fuse, "EViT: fold inattentive tokens into one extra token (default on)");
  sub->add_option("--fastv-k", p.fastv_k, "FastV / DART: prune before LLM layer K")->capture_default_str();
  sub->add_option("--fastv-rank", p.fastv_rank,
                  "FastV ranking: last-token (its code) or mean-received (its paper)")
      ->capture_default_str()
      ->check(CLI::IsMember({"last-token", "mean-received"}));
  sub->add_option("--pdrop-layers", p.pdrop_layers, "PyramidDrop: prune before these LLM layers")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--visionzip-contextual", p.visionzip_contextual,
                  "VisionZip: share of the kept tokens that are contextual (merged) tokens")
      ->capture_default_str();
  sub->add_option("--dart-pivots", p.dart_pivots, "DART: number of pivot tokens")->capture_default_str();
  sub->add_option("--reduce-seed", p.seed, "Seed of the random baseline")->capture_default_str();
  sub->add_option("--positions", a.positions,
                  "Position ids after an in-LLM reduction: original (survivors keep theirs), compact (renumbered per "
                  "layer) or auto (the method's original choice: compact for pdrop and sparsevlm, original otherwise)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "original", "compact"}));
}

}  // namespace

void AddReductionOptions(CLI::App* sub, ReductionArgs& a, bool with_method_and_budget) {
  if (with_method_and_budget) AddMethodAndBudget(sub, a);
  AddHyperparameters(sub, a);
}

}  // namespace ficoco::cli
