// Prompt construction: LLaVA-1.5's conversation template (vicuna_v1) and the
// `<image>` placeholder handling of LLaVA's tokenizer_image_token.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ficoco {

enum class PromptTemplate { Llava15, Raw };
PromptTemplate ParsePromptTemplate(const std::string& name);  // "llava-1.5" | "raw"

inline constexpr const char* kImagePlaceholder = "<image>";

// vicuna_v1: "<system> USER: <image>\n<question> ASSISTANT:". If the question has
// no <image> and an image is given, "<image>\n" goes first, as LLaVA does.
std::string ApplyLlava15Template(const std::string& question, bool with_image);

// Splits `prompt` at each "<image>", encodes the chunks separately (BOS once, on
// the first), and puts `image_token_id` where each placeholder stood.
std::vector<int> TokenizeWithImages(const Tokenizer& tokenizer, const std::string& prompt, int image_token_id);

}  // namespace ficoco
