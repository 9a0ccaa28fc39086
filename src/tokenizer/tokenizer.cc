// Tokenizer: a thin, checked wrapper over sentencepiece::SentencePieceProcessor.
#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

#include "base/error.h"

namespace ficoco {
namespace {

// Offset of the first byte of the first ill-formed UTF-8 sequence, or npos when
// the whole text is well-formed (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
size_t FirstInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
    } else {
      return i;  // continuation byte without a lead, C0/C1, F5..FF
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// Length of an incomplete (so far well-formed) UTF-8 sequence at the end of `bytes`,
// 0 if the bytes end on a sequence boundary or the tail is malformed anyway.
size_t IncompleteUtf8Tail(const std::vector<unsigned char>& bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = bytes[n - back];
    if ((c & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    size_t need = 0;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3;
    else if (c >= 0xF0 && c <= 0xF4) need = 4;
    return (need > back) ? back : 0;
  }
  return 0;
}

}  // namespace

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::FromFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) Fail("tokenizer file '", path, "' does not exist");
  if (std::filesystem::is_directory(path, ec)) Fail("tokenizer file '", path, "' is a directory");
  Tokenizer t;
  t.origin_ = path;
  const auto status = t.sp_->Load(path);
  if (!status.ok()) {
    Fail("cannot load tokenizer file '", path, "' (not a valid SentencePiece model?): ", status.ToString());
  }
  t.CheckLoaded();
  return t;
}

Tokenizer Tokenizer::FromSerializedProto(const std::string& bytes, const std::string& origin) {
  Tokenizer t;
  t.origin_ = origin;
  if (bytes.empty()) Fail("cannot load tokenizer from '", origin, "': the serialized model is empty");
  const auto status = t.sp_->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    Fail("cannot load tokenizer from '", origin, "' (not a valid SentencePiece model?): ", status.ToString());
  }
  t.CheckLoaded();
  return t;
}

void Tokenizer::CheckLoaded() const {
  if (sp_->GetPieceSize() <= 0) Fail("tokenizer '", origin_, "' has no pieces");
}

std::vector<int> Tokenizer::Encode(const std::string& text, bool add_bos) const {
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    Fail("prompt is not valid UTF-8 (byte offset ", bad, ")");
  }
  std::vector<int> ids;
  if (add_bos) {
    if (bos_id() < 0) Fail("tokenizer '", origin_, "' has no BOS token, cannot prepend one");
    ids.push_back(bos_id());
  }
  std::vector<int> body;
  const auto status = sp_->Encode(text, &body);
  if (!status.ok()) Fail("tokenizer '", origin_, "': encoding failed: ", status.ToString());
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  const int n = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n) {
      Fail("tokenizer '", origin_, "': token id ", ids[i], " at position ", i,
           " is outside the vocabulary (size ", n, ")");
    }
  }
  std::string text;
  const auto status = sp_->Decode(ids, &text);
  if (!status.ok()) Fail("tokenizer '", origin_, "': decoding failed: ", status.ToString());
  return text;
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }
std::string Tokenizer::IdToPiece(int id) const {
  if (!IsValidId(id)) Fail("tokenizer '", origin_, "': token id ", id, " is outside the vocabulary");
  return sp_->IdToPiece(id);
}
bool Tokenizer::IsByte(int id) const { return IsValidId(id) && sp_->IsByte(id); }

int Tokenizer::ByteValue(int id) const {
  if (!IsByte(id)) return -1;
  // Byte-fallback pieces are spelled "<0xAB>".
  const std::string& piece = sp_->IdToPiece(id);
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = piece[k];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

// ---------------------------------------------------------------------------------

size_t StreamingDecoder::HeldBack() const {
  // The trailing run of byte-fallback ids; if its bytes end in an incomplete UTF-8
  // sequence, those ids wait (decoding them now would give U+FFFD).
  std::vector<unsigned char> bytes;
  size_t start = ids_.size();
  while (start > 0 && ids_.size() - start < 4) {
    const int v = tokenizer_.ByteValue(ids_[start - 1]);
    if (v < 0) break;
    --start;
  }
  for (size_t i = start; i < ids_.size(); ++i) bytes.push_back(static_cast<unsigned char>(tokenizer_.ByteValue(ids_[i])));
  return IncompleteUtf8Tail(bytes);
}

std::string StreamingDecoder::Push(int id) {
  ids_.push_back(id);
  const size_t hold = HeldBack();
  const std::vector<int> ready(ids_.begin(), ids_.end() - static_cast<std::ptrdiff_t>(hold));
  std::string text = tokenizer_.Decode(ready);
  // SentencePiece decoding is left to right, so the text of a prefix of the ids is a
  // prefix of the text of all of them (once incomplete byte sequences are held back).
  if (text.size() <= emitted_.size() || text.compare(0, emitted_.size(), emitted_) != 0) return {};
  std::string fresh = text.substr(emitted_.size());
  emitted_ = std::move(text);
  return fresh;
}

std::string StreamingDecoder::Finish() {
  std::string text = tokenizer_.Decode(ids_);
  std::string fresh;
  if (text.size() > emitted_.size() && text.compare(0, emitted_.size(), emitted_) == 0) {
    fresh = text.substr(emitted_.size());
  }
  ids_.clear();
  emitted_.clear();
  return fresh;
}

}  // namespace ficoco
