// The model's SentencePiece tokenizer, through the SentencePiece library.
#pragma once
#include <cstddef>
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
  // The piece text of a valid id ("▁Hello", "<0x0A>", "<s>"); throws on a bad id.
  std::string IdToPiece(int id) const;
  // Byte-fallback pieces ("<0xAB>"): IsByte, and the byte value (-1 if not a byte piece).
  bool IsByte(int id) const;
  int ByteValue(int id) const;
  // The file or name the model came from, for error messages.
  const std::string& origin() const { return origin_; }

 private:
  Tokenizer();
  void CheckLoaded() const;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string origin_;
};

// Turns generated ids into text incrementally: each Push returns the new text that
// is final so far (SentencePiece's leading-space and byte-fallback pieces make the
// text of one id depend on its neighbours, so it decodes the whole tail and diffs).
// Byte-fallback ids that end in an incomplete UTF-8 sequence are held back until the
// sequence completes. The concatenation of all Push results and Finish equals
// Tokenizer::Decode of all the ids. Push throws Error on an id outside the vocabulary.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::string Push(int id);
  // Emits what is still held back (an incomplete sequence decodes to U+FFFD, as in
  // Decode) and resets the decoder for a new sequence.
  std::string Finish();

 private:
  size_t HeldBack() const;  // trailing ids waiting for the rest of a UTF-8 sequence

  const Tokenizer& tokenizer_;
  std::vector<int> ids_;
  std::string emitted_;
};

}  // namespace ficoco
