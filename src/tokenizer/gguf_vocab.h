// A SentencePiece vocabulary as GGUF carries it (`tokenizer.ggml.*` keys, model "llama"),
// and the bridges between that form, a `tokenizer.model` file and our Tokenizer:
//   GGUF keys  -> GgufVocab -> serialized sentencepiece.ModelProto -> Tokenizer
//   tokenizer.model -> GgufVocab -> GGUF keys (ficoco quantize)
// The ModelProto is written and read with a hand-written protobuf wire codec covering the
// few fields involved: Debian ships SentencePiece's library but no protobuf headers for
// its model, so the generated message classes are not available.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace ficoco {

class GgufWriter;

// Piece types, numbered as SentencePiece's ModelProto.SentencePiece.Type and llama.cpp's
// token types (GGUF tokenizer.ggml.token_type) alike.
enum class PieceType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct GgufVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // PieceType values
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool add_dummy_prefix = true;           // SentencePiece's leading "▁"
  bool remove_extra_whitespaces = false;  // LLaMA keeps runs of spaces
  bool byte_fallback = true;              // unknown characters as <0xNN> pieces

  // Checks sizes, ids in range, the unknown piece, unique pieces; `origin` names the source.
  void Validate(const std::string& origin) const;
};

// Reads tokenizer.ggml.{model,tokens,scores,token_type,*_token_id,add_space_prefix,
// remove_extra_whitespaces} from a GGUF file. Only model "llama" (SentencePiece BPE) is
// accepted. Throws Error naming the file and the key.
GgufVocab ReadGgufVocab(const GgufFile& file);
// Writes the same keys (plus add_bos_token = true, add_eos_token = false).
void WriteGgufVocab(const GgufVocab& vocab, GgufWriter& writer);

// Reads a SentencePiece BPE `tokenizer.model`. Error for a unigram model or one with a
// normalization rule (a GGUF vocabulary cannot carry a precompiled charsmap).
GgufVocab ReadSentencePieceVocab(const std::string& model_path);

// A serialized sentencepiece.ModelProto for the vocabulary (BPE, identity normalizer).
std::string SentencePieceModelProto(const GgufVocab& vocab);

// The tokenizer embedded in a GGUF text model.
Tokenizer TokenizerFromGguf(const GgufFile& file);

}  // namespace ficoco
