// Tokenizer, StreamingDecoder and LLaVA-1.5 prompt construction, against the
// LLaMA-2 tokenizer.model and golden tokenisations in ../shared/fixtures, plus the
// project's own demo tokenizer in assets/tokenizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/json_file.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ficoco {
namespace {

using Ids = std::vector<int>;

std::string LlamaModelPath() { return test::LlamaTokenizerDir() + "/tokenizer.model"; }
std::string DemoModelPath() { return test::SourceDir() + "/assets/tokenizer/ficoco-demo.model"; }

const Tokenizer& Llama() {
  static const Tokenizer* t = new Tokenizer(Tokenizer::FromFile(LlamaModelPath()));
  return *t;
}

nlohmann::json ReadJson(const std::string& path) { return ParseJsonObject(ReadTextFile(path), path); }

nlohmann::json GoldenTokenization() { return ReadJson(test::LlamaTokenizerDir() + "/golden_tokenization.json"); }

// Runs `ids` through a StreamingDecoder; returns the concatenated output and the pieces.
std::string Stream(const Tokenizer& tok, const Ids& ids, std::vector<std::string>* chunks = nullptr) {
  StreamingDecoder dec(tok);
  std::string out;
  for (int id : ids) {
    std::string s = dec.Push(id);
    if (chunks) chunks->push_back(s);
    out += s;
  }
  std::string tail = dec.Finish();
  if (chunks) chunks->push_back(tail);
  return out + tail;
}

std::string ExpectThrows(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ficoco::Error";
  return {};
}

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// ---------------------------------------------------------------------------------
// LLaMA-2 tokenizer: golden tokenisations.

TEST(LlamaTokenizer, SpecialIdsAndVocab) {
  const auto golden = GoldenTokenization();
  EXPECT_EQ(Llama().vocab_size(), golden["vocab_size"].get<int>());
  EXPECT_EQ(Llama().bos_id(), golden["special"]["bos"].get<int>());
  EXPECT_EQ(Llama().eos_id(), golden["special"]["eos"].get<int>());
  EXPECT_EQ(Llama().IdToPiece(0), "<unk>");
  EXPECT_EQ(Llama().IdToPiece(1), "<s>");
  EXPECT_EQ(Llama().IdToPiece(2), "</s>");
  EXPECT_TRUE(Llama().IsByte(13));
  EXPECT_EQ(Llama().ByteValue(13), 0x0A);
  EXPECT_EQ(Llama().ByteValue(3 + 0xF0), 0xF0);
  EXPECT_FALSE(Llama().IsByte(29871));
  EXPECT_EQ(Llama().ByteValue(29871), -1);
  EXPECT_FALSE(Llama().IsValidId(32000));  // LLaVA's <image> is not a SentencePiece id
  EXPECT_EQ(Llama().origin(), LlamaModelPath());
}

TEST(LlamaTokenizer, AllGoldenCases) {
  const auto golden = GoldenTokenization();
  const auto& cases = golden["cases"];
  ASSERT_EQ(cases.size(), 5u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    SCOPED_TRACE(text);
    const Ids no_bos = c["ids_no_bos"].get<Ids>();
    const Ids with_bos = c["with_bos"].get<Ids>();
    EXPECT_EQ(Llama().Encode(text, false), no_bos);
    EXPECT_EQ(Llama().Encode(text, true), with_bos);
    const auto pieces = c["pieces"].get<std::vector<std::string>>();
    ASSERT_EQ(pieces.size(), no_bos.size());
    for (size_t i = 0; i < pieces.size(); ++i) EXPECT_EQ(Llama().IdToPiece(no_bos[i]), pieces[i]) << i;
    if (c["decode_roundtrip"].get<bool>()) {
      EXPECT_EQ(Llama().Decode(no_bos), text);
      EXPECT_EQ(Llama().Decode(with_bos), text);  // <s> decodes to nothing
    }
  }
}

TEST(LlamaTokenizer, LlavaTokenizerImageTokenGolden) {
  const auto golden = GoldenTokenization();
  const int image_id = golden["llava_added_tokens"]["<image>"].get<int>();
  ASSERT_EQ(image_id, 32000);
  int found = 0;
  for (const auto& c : golden["cases"]) {
    if (!c.contains("llava_tokenizer_image_token")) continue;
    ++found;
    const Ids expected = c["llava_tokenizer_image_token"].get<Ids>();
    EXPECT_EQ(TokenizeWithImages(Llama(), c["text"].get<std::string>(), image_id), expected);
  }
  EXPECT_EQ(found, 1);
}

TEST(LlamaTokenizer, LlavaTinyPromptIds) {
  const auto golden = ReadJson(test::LlavaTinyDir() + "/golden.json");
  const auto& p = golden["prompt"];
  const std::string text = p["text"];
  ASSERT_EQ(text, "USER: <image>\nWhat is in the picture? ASSISTANT:");
  const Ids expected = p["input_ids"].get<Ids>();
  const Ids ids = TokenizeWithImages(Llama(), text, p["image_token_index"].get<int>());
  EXPECT_EQ(ids, expected);
  // The exact shape LLaVA produces: "▁" (29871) closes the first chunk ("USER: " ends in a
  // space) and opens the second (its dummy prefix before "\n").
  EXPECT_EQ(ids, (Ids{1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799,
                      9047, 13566, 29901}));
}

// ---------------------------------------------------------------------------------
// tokenizer_image_token edge cases (the Python semantics: prompt.split('<image>')).

TEST(LlamaTokenizer, TokenizeWithImagesEdgeCases) {
  const int img = 32000;
  auto enc = [](const std::string& s) { return Llama().Encode(s, false); };
  auto cat = [](std::initializer_list<Ids> parts) {
    Ids out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  // No placeholder: plain encode with BOS.
  EXPECT_EQ(TokenizeWithImages(Llama(), "Hello world!", img), (Ids{1, 15043, 3186, 29991}));
  // Leading placeholder: the empty first chunk keeps only its BOS.
  EXPECT_EQ(TokenizeWithImages(Llama(), "<image>\nHi", img), cat({{1, img}, enc("\nHi")}));
  EXPECT_EQ(TokenizeWithImages(Llama(), "<image>", img), (Ids{1, img}));
  // Trailing placeholder and two adjacent ones (an empty chunk between them).
  EXPECT_EQ(TokenizeWithImages(Llama(), "a<image>", img), cat({{1}, enc("a"), {img}}));
  EXPECT_EQ(TokenizeWithImages(Llama(), "a<image><image>b", img), cat({{1}, enc("a"), {img, img}, enc("b")}));
  // Empty prompt: only BOS.
  EXPECT_EQ(TokenizeWithImages(Llama(), "", img), (Ids{1}));
  // Every chunk gets the dummy prefix: "b" after an image is "▁b", not "b".
  EXPECT_EQ(TokenizeWithImages(Llama(), "<image>b", img).back(), enc("b").back());
  EXPECT_EQ(enc("b"), (Ids{289}));  // "▁b"
}

// ---------------------------------------------------------------------------------
// The vicuna_v1 template.

constexpr const char* kSystem =
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the human's questions.";

TEST(ChatTemplate, Llava15Text) {
  const std::string sys = kSystem;
  EXPECT_EQ(ApplyLlava15Template("What is in the picture?", true),
            sys + " USER: <image>\nWhat is in the picture? ASSISTANT:");
  // The question already places the image: kept where it is, no second placeholder.
  EXPECT_EQ(ApplyLlava15Template("Look: <image> What colour is it?", true),
            sys + " USER: Look: <image> What colour is it? ASSISTANT:");
  // No image: the question alone.
  EXPECT_EQ(ApplyLlava15Template("Tell me a joke.", false), sys + " USER: Tell me a joke. ASSISTANT:");
  EXPECT_EQ(ApplyLlava15Template("", false), sys + " USER:  ASSISTANT:");
  // Multi-line questions are passed through untouched.
  EXPECT_EQ(ApplyLlava15Template("Which?\nA. red\nB. blue", true),
            sys + " USER: <image>\nWhich?\nA. red\nB. blue ASSISTANT:");
}

TEST(ChatTemplate, Llava15Ids) {
  const auto golden = GoldenTokenization();
  const Ids system_ids = golden["cases"][2]["with_bos"].get<Ids>();  // BOS + the system prompt
  const Ids ids = TokenizeWithImages(Llama(), ApplyLlava15Template("What is in the picture?", true), 32000);
  ASSERT_GT(ids.size(), system_ids.size());
  EXPECT_EQ(Ids(ids.begin(), ids.begin() + static_cast<long>(system_ids.size())), system_ids);
  // "... questions. USER: " + <image> + "\nWhat is in the picture? ASSISTANT:".
  const Ids tail = {3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799, 9047, 13566,
                    29901};
  ASSERT_GE(ids.size(), tail.size());
  EXPECT_EQ(Ids(ids.end() - static_cast<long>(tail.size()), ids.end()), tail);
  EXPECT_EQ(ids.size(), system_ids.size() + tail.size());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 32000), 1);
  // Without an image there is no image id.
  const Ids text_only = TokenizeWithImages(Llama(), ApplyLlava15Template("Hi", false), 32000);
  EXPECT_EQ(std::count(text_only.begin(), text_only.end(), 32000), 0);
  EXPECT_EQ(text_only.front(), 1);
}

TEST(ChatTemplate, ParsePromptTemplate) {
  EXPECT_EQ(ParsePromptTemplate("llava-1.5"), PromptTemplate::Llava15);
  EXPECT_EQ(ParsePromptTemplate("raw"), PromptTemplate::Raw);
  const std::string msg = ExpectThrows([] { ParsePromptTemplate("vicuna"); });
  EXPECT_NE(msg.find("'vicuna'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llava-1.5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("raw"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------
// Decoding and streaming.

const std::vector<std::string>& RoundTripTexts() {
  static const std::vector<std::string> texts = {
      "Hello world!",
      "The answer is 42.",
      "  two leading spaces and trailing  ",
      "line one\nline two\n\n\tindented",
      "Café naïve — 東京タワー 🦙 Ünïcödé ñ!",
      "🦙🦙 emoji at the start, then 🎉 and ✨ mid-sentence 🚀",
      "中文文本测试：我们今天去公园散步。",
      "Ελληνικά, русский, עברית, العربية, हिन्दी, 한국어",
      "x",
      "",
  };
  return texts;
}

TEST(LlamaTokenizer, DecodeRoundTrips) {
  for (const auto& text : RoundTripTexts()) {
    SCOPED_TRACE(text);
    EXPECT_EQ(Llama().Decode(Llama().Encode(text, false)), text);
    EXPECT_EQ(Llama().Decode(Llama().Encode(text, true)), text);
  }
  // EOS also decodes to nothing.
  Ids ids = Llama().Encode("Done.", true);
  ids.push_back(Llama().eos_id());
  EXPECT_EQ(Llama().Decode(ids), "Done.");
  EXPECT_EQ(Llama().Decode({}), "");
}

TEST(LlamaTokenizer, DecodeRejectsOutOfRangeIds) {
  std::string msg = ExpectThrows([] { Llama().Decode({15043, 32000}); });
  EXPECT_NE(msg.find("32000"), std::string::npos) << msg;
  msg = ExpectThrows([] { Llama().Decode({-1}); });
  EXPECT_NE(msg.find("-1"), std::string::npos) << msg;
  StreamingDecoder dec(Llama());
  EXPECT_THROW(dec.Push(40000), Error);
}

TEST(StreamingDecoder, MatchesOneShotDecode) {
  std::vector<Ids> sequences;
  for (const auto& text : RoundTripTexts()) {
    sequences.push_back(Llama().Encode(text, false));
    sequences.push_back(Llama().Encode(text, true));
  }
  const auto golden = GoldenTokenization();
  for (const auto& c : golden["cases"]) sequences.push_back(c["with_bos"].get<Ids>());
  // A generation-like sequence: answer, EOS.
  Ids gen = Llama().Encode("The 🦙 is red. 東京!", false);
  gen.push_back(2);
  sequences.push_back(gen);
  for (const auto& ids : sequences) {
    const std::string expected = Llama().Decode(ids);
    SCOPED_TRACE(expected);
    std::vector<std::string> chunks;
    EXPECT_EQ(Stream(Llama(), ids, &chunks), expected);
    // Valid input never shows a replacement character mid-stream.
    for (const auto& s : chunks) EXPECT_EQ(s.find(kReplacement), std::string::npos) << s;
  }
}

TEST(StreamingDecoder, HoldsBackIncompleteUtf8) {
  // "🦙" is byte-fallback: <0xF0> <0x9F> <0xA6> <0x99>.
  const Ids ids = Llama().Encode("a🦙b", false);
  std::vector<int> bytes;
  for (int id : ids)
    if (Llama().IsByte(id)) bytes.push_back(Llama().ByteValue(id));
  ASSERT_EQ(bytes, (std::vector<int>{0xF0, 0x9F, 0xA6, 0x99}));
  StreamingDecoder dec(Llama());
  std::string out;
  for (int id : ids) {
    const std::string s = dec.Push(id);
    if (Llama().IsByte(id) && Llama().ByteValue(id) != 0x99) {
      EXPECT_EQ(s, "") << "incomplete sequence emitted at byte " << Llama().ByteValue(id);
    }
    if (Llama().ByteValue(id) == 0x99) {
      EXPECT_NE(s.find("🦙"), std::string::npos);
    }
    out += s;
  }
  out += dec.Finish();
  EXPECT_EQ(out, "a🦙b");
}

TEST(StreamingDecoder, FlushesIncompleteTailAtFinish) {
  // Generation stopped mid-character: Finish gives what Decode gives (U+FFFDs).
  Ids ids = Llama().Encode("ok ", false);
  ids.push_back(3 + 0xF0);
  ids.push_back(3 + 0x9F);
  const std::string expected = Llama().Decode(ids);
  EXPECT_NE(expected.find(kReplacement), std::string::npos);
  StreamingDecoder dec(Llama());
  std::string streamed;
  for (int id : ids) streamed += dec.Push(id);
  EXPECT_EQ(streamed.find(kReplacement), std::string::npos);
  streamed += dec.Finish();
  EXPECT_EQ(streamed, expected);
  // A stray continuation byte is not held back (it can never complete).
  EXPECT_EQ(Stream(Llama(), {3 + 0x99, 29874}), Llama().Decode({3 + 0x99, 29874}));
  // Finish resets: the decoder can be reused.
  EXPECT_EQ(Stream(Llama(), Llama().Encode("again", false)), "again");
}

TEST(StreamingDecoder, LeadingSpaceHandledLikeDecode) {
  // "▁" alone first, then a digit: the dummy-prefix space is dropped as in Decode.
  const Ids ids = {29871, 29941, 29889, 29896};  // "▁" "3" "." "1"
  EXPECT_EQ(Stream(Llama(), ids), Llama().Decode(ids));
  std::vector<std::string> chunks;
  Stream(Llama(), Llama().Encode("Hello world", false), &chunks);
  EXPECT_EQ(chunks[0], "Hello");
  EXPECT_EQ(chunks[1], " world");
}

// ---------------------------------------------------------------------------------
// Input validation and loading errors.

TEST(LlamaTokenizer, RejectsInvalidUtf8) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const std::vector<Case> cases = {
      {"abc\xff", 3},
      {"\x80start", 0},
      {"ok \xC3", 3},                 // truncated 2-byte sequence at the end
      {"ok \xE2\x82 more", 3},        // truncated 3-byte sequence
      {"\xC0\x80", 0},                // overlong NUL
      {"x\xE0\x80\x80", 1},           // overlong 3-byte
      {"xy\xED\xA0\x80", 2},          // UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},        // above U+10FFFF
      {"caf\xC3\xA9 \xF0\x9F\xA6", 6},  // valid é, then a truncated emoji
  };
  for (const auto& c : cases) {
    const std::string msg = ExpectThrows([&] { Llama().Encode(c.text, true); });
    EXPECT_EQ(msg, "prompt is not valid UTF-8 (byte offset " + std::to_string(c.offset) + ")");
  }
  // Also through TokenizeWithImages.
  EXPECT_THROW(TokenizeWithImages(Llama(), "<image>\n\xff", 32000), Error);
  // Valid edge cases pass.
  EXPECT_NO_THROW(Llama().Encode("\xF4\x8F\xBF\xBF \xEF\xBF\xBD \xED\x9F\xBF", false));
}

TEST(TokenizerLoad, MissingFile) {
  const std::string path = test::MakeTempDir("tok") + "/nope.model";
  const std::string msg = ExpectThrows([&] { Tokenizer::FromFile(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(TokenizerLoad, CorruptFile) {
  const std::string dir = test::MakeTempDir("tok");
  const std::vector<std::pair<std::string, std::string>> files = {
      {"garbage.model", std::string("this is not a sentencepiece model \xff\xfe\x01\x02", 40)},
      {"empty.model", ""},
      {"truncated.model", test::ReadFile(LlamaModelPath()).substr(0, 1000)},
  };
  for (const auto& [name, bytes] : files) {
    const std::string path = dir + "/" + name;
    test::WriteFile(path, bytes);
    const std::string msg = ExpectThrows([&] { Tokenizer::FromFile(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    const std::string msg2 = ExpectThrows([&] { Tokenizer::FromSerializedProto(bytes, "gguf:" + name); });
    EXPECT_NE(msg2.find("gguf:" + name), std::string::npos) << msg2;
  }
  // A directory is not a model file.
  const std::string msg = ExpectThrows([&] { Tokenizer::FromFile(dir); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
}

TEST(TokenizerLoad, FromSerializedProtoMatchesFile) {
  Tokenizer t = Tokenizer::FromSerializedProto(test::ReadFile(LlamaModelPath()), "memory");
  EXPECT_EQ(t.vocab_size(), 32000);
  EXPECT_EQ(t.origin(), "memory");
  EXPECT_EQ(t.Encode("Hello world!", true), (Ids{1, 15043, 3186, 29991}));
  // Moves keep the model.
  Tokenizer moved = std::move(t);
  EXPECT_EQ(moved.Decode({15043, 3186}), "Hello world");
}

// ---------------------------------------------------------------------------------
// The project's own demo tokenizer (tools/tokenizer/train.sh).

const Tokenizer& Demo() {
  static const Tokenizer* t = new Tokenizer(Tokenizer::FromFile(DemoModelPath()));
  return *t;
}

TEST(DemoTokenizer, SpecialIdsAndSize) {
  EXPECT_EQ(Demo().vocab_size(), 4000);
  EXPECT_EQ(Demo().bos_id(), 1);
  EXPECT_EQ(Demo().eos_id(), 2);
  EXPECT_EQ(Demo().IdToPiece(0), "<unk>");
  EXPECT_EQ(Demo().IdToPiece(1), "<s>");
  EXPECT_EQ(Demo().IdToPiece(2), "</s>");
  // Byte fallback: 256 byte pieces right after the specials, as in LLaMA.
  EXPECT_EQ(Demo().IdToPiece(3), "<0x00>");
  EXPECT_EQ(Demo().ByteValue(3 + 0x0A), 0x0A);
  EXPECT_EQ(Demo().IdToPiece(258), "<0xFF>");
  std::ifstream f(DemoModelPath(), std::ios::binary | std::ios::ate);
  EXPECT_LT(static_cast<long>(f.tellg()), 1 << 20);
}

TEST(DemoTokenizer, RoundTrips) {
  for (const std::string text :
       {"The small red circle is to the left of the blue square.", "A. triangle\nB. star\nC. oval\nD. hexagon",
        "There are 12 shapes; 3 of them are green.", "Café 東京 🦙 — unseen characters use byte fallback.",
        "  spaces  kept  "}) {
    SCOPED_TRACE(text);
    const Ids ids = Demo().Encode(text, true);
    EXPECT_EQ(ids.front(), 1);
    EXPECT_EQ(Demo().Decode(ids), text);
    EXPECT_EQ(Stream(Demo(), ids), text);
  }
  // split_digits: every digit is its own piece.
  const Ids digits = Demo().Encode("2024", false);
  EXPECT_EQ(Demo().Decode({digits.back()}), "4");
  EXPECT_EQ(digits.size(), 5u);  // "▁" + 4 digits
  // Newline is a byte piece (never in the corpus's lines), as in LLaMA.
  const Ids nl = Demo().Encode("a\nb", false);
  EXPECT_NE(std::find(nl.begin(), nl.end(), 3 + 0x0A), nl.end());
}

TEST(DemoTokenizer, CorpusQuestionsAreShort) {
  // Questions of the kind make_corpus.py writes encode to few ids (the corpus words
  // are whole pieces), far fewer than one per character.
  const std::string q = "How many red triangles are in the image?";
  const Ids ids = Demo().Encode(q, false);
  EXPECT_LE(ids.size(), 12u) << ids.size();
  const std::string sys = kSystem;
  const Ids sys_ids = Demo().Encode(sys, false);
  EXPECT_LE(sys_ids.size(), 40u) << sys_ids.size();
  // The LLaVA prompt tokenizes with the demo model too.
  const Ids prompt = TokenizeWithImages(Demo(), ApplyLlava15Template("What color is the circle?", true), 4000);
  EXPECT_EQ(prompt.front(), 1);
  EXPECT_EQ(std::count(prompt.begin(), prompt.end(), 4000), 1);
  EXPECT_LE(prompt.size(), 70u) << prompt.size();
}

}  // namespace
}  // namespace ficoco
