// The model's SentencePiece tokenizer, through the SentencePiece library.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ficoco {

class Tokenizer {
 public:
  // Loads a serialized SentencePiece model (tokenizer.model); throws Error naming the file.
  static Tokenizer FromFile(const std::string& path);
  // From an in-memory serialized ModelProto (GGUF vocabularies build one).
  static Tokenizer FromSerializedProto(const std::string& bytes, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // SentencePiece encoding with its dummy prefix; BOS prepended when asked. Throws
  // Error on invalid UTF-8.
  std::vector<int> Encode(const std::string& text, bool add_bos) const;
  std::string Decode(const std::vector<int>& ids) const;
  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  bool IsValidId(int id) const { return id >= 0 && id < vocab_size(); }

 private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// Turns generated ids into text incrementally: each Push returns the new text that
// is final so far (SentencePiece's leading-space and byte-fallback pieces make the
// text of one id depend on its neighbours, so it decodes the whole tail and diffs).
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::string Push(int id);
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  std::vector<int> ids_;
  std::string emitted_;
};

}  // namespace ficoco
