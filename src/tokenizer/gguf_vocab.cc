#include "tokenizer/gguf_vocab.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unordered_set>

#include "base/error.h"
#include "io/gguf_writer.h"

namespace ficoco {
namespace {

// --- protobuf wire format (the subset a ModelProto needs) -------------------------------------
// A field is a varint key (field number << 3 | wire type) and a value: wire type 0 = varint,
// 1 = 8 bytes, 2 = varint length + bytes (strings, nested messages), 5 = 4 bytes (float).
// Negative int32 values are varints of their 64-bit two's complement (10 bytes).

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void PutKey(std::string& out, int field, int wire) { PutVarint(out, (static_cast<uint64_t>(field) << 3) | wire); }
void PutInt(std::string& out, int field, int64_t v) {
  PutKey(out, field, 0);
  PutVarint(out, static_cast<uint64_t>(v));
}
void PutBool(std::string& out, int field, bool v) { PutInt(out, field, v ? 1 : 0); }
void PutBytes(std::string& out, int field, const std::string& bytes) {
  PutKey(out, field, 2);
  PutVarint(out, bytes.size());
  out += bytes;
}
void PutFloat(std::string& out, int field, float v) {
  PutKey(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

struct WireField {
  int number = 0;
  int wire = 0;
  uint64_t varint = 0;  // wire 0
  float f32 = 0;        // wire 5
  std::string bytes;    // wire 2
};

// Splits one message into its fields; Error (naming `origin`) on truncated or malformed input.
std::vector<WireField> ParseMessage(const std::string& msg, const std::string& origin) {
  std::vector<WireField> out;
  size_t i = 0;
  auto varint = [&]() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= msg.size()) Fail(origin, ": truncated protobuf varint at byte ", i);
      const auto c = static_cast<uint8_t>(msg[i++]);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (c < 0x80) return v;
    }
    Fail(origin, ": protobuf varint longer than 10 bytes at byte ", i);
  };
  while (i < msg.size()) {
    WireField f;
    const uint64_t key = varint();
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.number == 0) Fail(origin, ": protobuf field number 0 at byte ", i);
    switch (f.wire) {
      case 0: f.varint = varint(); break;
      case 1:
        if (msg.size() - i < 8) Fail(origin, ": truncated 8-byte protobuf field ", f.number);
        i += 8;
        break;
      case 2: {
        const uint64_t n = varint();
        if (n > msg.size() - i) Fail(origin, ": protobuf field ", f.number, " claims ", n, " bytes, ", msg.size() - i, " left");
        f.bytes = msg.substr(i, n);
        i += n;
        break;
      }
      case 5:
        if (msg.size() - i < 4) Fail(origin, ": truncated 4-byte protobuf field ", f.number);
        std::memcpy(&f.f32, msg.data() + i, 4);
        i += 4;
        break;
      default: Fail(origin, ": unsupported protobuf wire type ", f.wire, " for field ", f.number);
    }
    out.push_back(std::move(f));
  }
  return out;
}

// ModelProto field numbers (sentencepiece_model.proto).
constexpr int kPieces = 1, kTrainerSpec = 2, kNormalizerSpec = 3;
constexpr int kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr int kModelType = 3, kVocabSize = 4, kTreatWsAsSuffix = 24, kSplitDigits = 25, kAllowWsOnlyPieces = 26,
              kByteFallback = 35, kUnkId = 40, kBosId = 41, kEosId = 42, kPadId = 43, kUnkPiece = 45, kBosPiece = 46,
              kEosPiece = 47, kPadPiece = 48;
constexpr int kNormName = 1, kNormCharsmap = 2, kNormDummyPrefix = 3, kNormRemoveExtraWs = 4, kNormEscapeWs = 5;
constexpr int kModelTypeUnigram = 1, kModelTypeBpe = 2;

int32_t AsInt32(uint64_t v) { return static_cast<int32_t>(static_cast<int64_t>(v)); }

}  // namespace

void GgufVocab::Validate(const std::string& origin) const {
  const size_t n = tokens.size();
  if (n == 0) Fail(origin, ": the vocabulary has no tokens");
  if (scores.size() != n) Fail(origin, ": ", scores.size(), " scores for ", n, " tokens");
  if (types.size() != n) Fail(origin, ": ", types.size(), " token types for ", n, " tokens");
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i].empty()) Fail(origin, ": token ", i, " is an empty string");
    if (types[i] < 1 || types[i] > 6) Fail(origin, ": token ", i, " ('", tokens[i], "') has unknown type ", types[i]);
    if (!seen.insert(tokens[i]).second) Fail(origin, ": token '", tokens[i], "' appears twice (again at id ", i, ")");
  }
  auto check_id = [&](int32_t id, const char* what, bool optional) {
    if (optional && id < 0) return;
    if (id < 0 || static_cast<size_t>(id) >= n) Fail(origin, ": ", what, " id ", id, " is outside the ", n, " tokens");
  };
  check_id(unk_id, "unknown-token", false);
  check_id(bos_id, "BOS", true);
  check_id(eos_id, "EOS", true);
  check_id(pad_id, "padding", true);
  if (types[unk_id] != static_cast<int32_t>(PieceType::Unknown))
    Fail(origin, ": the unknown-token id ", unk_id, " ('", tokens[unk_id], "') is not of type unknown (2)");
  for (size_t i = 0; i < n; ++i)
    if (types[i] == static_cast<int32_t>(PieceType::Unknown) && static_cast<int32_t>(i) != unk_id)
      Fail(origin, ": token ", i, " is a second unknown-type token (the unknown token is ", unk_id, ")");
}

GgufVocab ReadGgufVocab(const GgufFile& f) {
  const std::string& path = f.path();
  if (!f.Has("tokenizer.ggml.model")) Fail(path, ": no tokenizer (key 'tokenizer.ggml.model' missing); pass --tokenizer");
  const std::string& model = f.GetString("tokenizer.ggml.model");
  if (model != "llama")
    Fail(path, ": tokenizer.ggml.model is '", model, "'; only 'llama' (SentencePiece BPE, LLaMA-2/Vicuna) is supported");
  GgufVocab v;
  v.tokens = f.GetStringArray("tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  v.scores = f.Has("tokenizer.ggml.scores") ? f.GetF32Array("tokenizer.ggml.scores") : std::vector<float>(n, 0.0f);
  v.types = f.Has("tokenizer.ggml.token_type") ? f.GetI32Array("tokenizer.ggml.token_type")
                                               : std::vector<int32_t>(n, static_cast<int32_t>(PieceType::Normal));
  for (int32_t& t : v.types)
    if (t == 0) t = static_cast<int32_t>(PieceType::Normal);  // llama.cpp's "undefined"
  auto id = [&](const char* key, int32_t def) {
    return f.Has(key) ? static_cast<int32_t>(f.GetInteger(key)) : def;
  };
  v.unk_id = id("tokenizer.ggml.unknown_token_id", 0);
  v.bos_id = id("tokenizer.ggml.bos_token_id", 1);
  v.eos_id = id("tokenizer.ggml.eos_token_id", 2);
  v.pad_id = id("tokenizer.ggml.padding_token_id", -1);
  // A padding id equal to another special token (LLaMA files say 0 = <unk>) is no piece of its own.
  if (v.pad_id == v.unk_id || v.pad_id == v.bos_id || v.pad_id == v.eos_id) v.pad_id = -1;
  if (f.Has("tokenizer.ggml.add_space_prefix")) v.add_dummy_prefix = f.GetBool("tokenizer.ggml.add_space_prefix");
  if (f.Has("tokenizer.ggml.remove_extra_whitespaces"))
    v.remove_extra_whitespaces = f.GetBool("tokenizer.ggml.remove_extra_whitespaces");
  v.byte_fallback = false;
  for (int32_t t : v.types) v.byte_fallback |= t == static_cast<int32_t>(PieceType::Byte);
  v.Validate(path + ": tokenizer.ggml");
  return v;
}

void WriteGgufVocab(const GgufVocab& v, GgufWriter& w) {
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", v.tokens);
  w.AddF32Array("tokenizer.ggml.scores", v.scores);
  w.AddI32Array("tokenizer.ggml.token_type", v.types);
  w.AddU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  if (v.bos_id >= 0) w.AddU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  if (v.eos_id >= 0) w.AddU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  if (v.pad_id >= 0) w.AddU32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  w.AddBool("tokenizer.ggml.add_eos_token", false);
  w.AddBool("tokenizer.ggml.add_space_prefix", v.add_dummy_prefix);
  w.AddBool("tokenizer.ggml.remove_extra_whitespaces", v.remove_extra_whitespaces);
}

GgufVocab ReadSentencePieceVocab(const std::string& model_path) {
  // Loading it through the library first gives its own diagnostics for a broken file.
  Tokenizer::FromFile(model_path);
  std::ifstream in(model_path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  GgufVocab v;
  // ModelProto defaults for fields a file leaves out.
  int model_type = kModelTypeUnigram;
  v.byte_fallback = false;
  v.add_dummy_prefix = true;
  v.remove_extra_whitespaces = true;
  std::string charsmap, norm_name;
  for (const WireField& f : ParseMessage(bytes, model_path)) {
    if (f.number == kPieces && f.wire == 2) {
      std::string text;
      float score = 0;
      int32_t type = static_cast<int32_t>(PieceType::Normal);
      for (const WireField& p : ParseMessage(f.bytes, model_path + " (piece " + std::to_string(v.tokens.size()) + ")")) {
        if (p.number == kPieceText && p.wire == 2) text = p.bytes;
        if (p.number == kPieceScore && p.wire == 5) score = p.f32;
        if (p.number == kPieceType && p.wire == 0) type = AsInt32(p.varint);
      }
      v.tokens.push_back(std::move(text));
      v.scores.push_back(score);
      v.types.push_back(type);
    } else if (f.number == kTrainerSpec && f.wire == 2) {
      for (const WireField& t : ParseMessage(f.bytes, model_path + " (trainer_spec)")) {
        if (t.wire != 0) continue;
        if (t.number == kModelType) model_type = AsInt32(t.varint);
        if (t.number == kByteFallback) v.byte_fallback = t.varint != 0;
        if (t.number == kUnkId) v.unk_id = AsInt32(t.varint);
        if (t.number == kBosId) v.bos_id = AsInt32(t.varint);
        if (t.number == kEosId) v.eos_id = AsInt32(t.varint);
        if (t.number == kPadId) v.pad_id = AsInt32(t.varint);
      }
    } else if (f.number == kNormalizerSpec && f.wire == 2) {
      for (const WireField& t : ParseMessage(f.bytes, model_path + " (normalizer_spec)")) {
        if (t.number == kNormName && t.wire == 2) norm_name = t.bytes;
        if (t.number == kNormCharsmap && t.wire == 2) charsmap = t.bytes;
        if (t.number == kNormDummyPrefix && t.wire == 0) v.add_dummy_prefix = t.varint != 0;
        if (t.number == kNormRemoveExtraWs && t.wire == 0) v.remove_extra_whitespaces = t.varint != 0;
      }
    }
  }
  if (model_type != kModelTypeBpe)
    Fail(model_path, ": a SentencePiece ", model_type == kModelTypeUnigram ? "unigram" : "non-BPE",
         " model; GGUF's 'llama' vocabulary is SentencePiece BPE (train with --model_type=bpe)");
  if (!charsmap.empty())
    Fail(model_path, ": the tokenizer normalizes text with rule '", norm_name,
         "', which a GGUF vocabulary cannot carry (train with --normalization_rule_name=identity)");
  v.Validate(model_path);
  return v;
}

std::string SentencePieceModelProto(const GgufVocab& v) {
  v.Validate("GGUF vocabulary");
  std::string out;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    std::string piece;
    PutBytes(piece, kPieceText, v.tokens[i]);
    PutFloat(piece, kPieceScore, v.scores[i]);
    PutInt(piece, kPieceType, v.types[i]);
    PutBytes(out, kPieces, piece);
  }
  // SentencePiece finds BOS/EOS/UNK/PAD by piece text, so the texts of the ids go in too.
  auto text_of = [&](int32_t id, const char* fallback) { return id >= 0 ? v.tokens[static_cast<size_t>(id)] : std::string(fallback); };
  std::string trainer;
  PutInt(trainer, kModelType, kModelTypeBpe);
  PutInt(trainer, kVocabSize, static_cast<int64_t>(v.tokens.size()));
  // LLaMA's settings for the options a GGUF vocabulary does not record.
  PutBool(trainer, kTreatWsAsSuffix, false);
  PutBool(trainer, kSplitDigits, true);
  PutBool(trainer, kAllowWsOnlyPieces, true);
  PutBool(trainer, kByteFallback, v.byte_fallback);
  PutInt(trainer, kUnkId, v.unk_id);
  PutInt(trainer, kBosId, v.bos_id);
  PutInt(trainer, kEosId, v.eos_id);
  PutInt(trainer, kPadId, v.pad_id);
  PutBytes(trainer, kUnkPiece, text_of(v.unk_id, "<unk>"));
  // An absent special token gets a piece text no vocabulary entry has.
  PutBytes(trainer, kBosPiece, text_of(v.bos_id, "<ficoco-no-bos>"));
  PutBytes(trainer, kEosPiece, text_of(v.eos_id, "<ficoco-no-eos>"));
  PutBytes(trainer, kPadPiece, text_of(v.pad_id, "<ficoco-no-pad>"));
  PutBytes(out, kTrainerSpec, trainer);
  std::string norm;
  PutBytes(norm, kNormName, "identity");
  PutBool(norm, kNormDummyPrefix, v.add_dummy_prefix);
  PutBool(norm, kNormRemoveExtraWs, v.remove_extra_whitespaces);
  PutBool(norm, kNormEscapeWs, true);
  PutBytes(out, kNormalizerSpec, norm);
  return out;
}

Tokenizer TokenizerFromGguf(const GgufFile& file) {
  return Tokenizer::FromSerializedProto(SentencePieceModelProto(ReadGgufVocab(file)), file.path() + " (tokenizer.ggml)");
}

}  // namespace ficoco
