// LLaVA-1.5's prompt: conv_vicuna_v1 (SeparatorStyle.TWO) and tokenizer_image_token.
#include "tokenizer/chat_template.h"

#include <string_view>

#include "base/error.h"

namespace ficoco {
namespace {

constexpr std::string_view kVicunaSystem =
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.";

}  // namespace

PromptTemplate ParsePromptTemplate(const std::string& name) {
  if (name == "llava-1.5") return PromptTemplate::Llava15;
  if (name == "raw") return PromptTemplate::Raw;
  Fail("unknown prompt template '", name, "' (valid: llava-1.5, raw)");
}

std::string ApplyLlava15Template(const std::string& question, bool with_image) {
  // LLaVA's run_llava / model_vqa: qs = DEFAULT_IMAGE_TOKEN + '\n' + qs unless the
  // question already places the image itself.
  std::string message = question;
  if (with_image && question.find(kImagePlaceholder) == std::string::npos) {
    message = std::string(kImagePlaceholder) + "\n" + question;
  }
  // Conversation.get_prompt, SeparatorStyle.TWO, sep " ", sep2 "</s>":
  //   system + sep, then "USER: " + message + sep, then "ASSISTANT:" (empty message).
  std::string prompt(kVicunaSystem);
  prompt += " ";
  prompt += "USER: ";
  prompt += message;
  prompt += " ";
  prompt += "ASSISTANT:";
  return prompt;
}

std::vector<int> TokenizeWithImages(const Tokenizer& tokenizer, const std::string& prompt, int image_token_id) {
  // tokenizer_image_token: prompt.split('<image>'), each chunk through the HF tokenizer
  // (SentencePiece encode with its dummy prefix, BOS prepended), BOS kept once at the
  // start and stripped from every later chunk; an empty chunk contributes nothing
  // but its (stripped) BOS. One image id per placeholder.
  const std::string_view placeholder = kImagePlaceholder;
  std::vector<int> ids;
  if (tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
  size_t start = 0;
  bool first = true;
  while (true) {
    const size_t pos = prompt.find(placeholder, start);
    const std::string chunk = prompt.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    if (!first) ids.push_back(image_token_id);
    first = false;
    const std::vector<int> chunk_ids = tokenizer.Encode(chunk, /*add_bos=*/false);
    ids.insert(ids.end(), chunk_ids.begin(), chunk_ids.end());
    if (pos == std::string::npos) break;
    start = pos + placeholder.size();
  }
  return ids;
}

}  // namespace ficoco
