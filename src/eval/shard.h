// Splitting one evaluation over several workers (Slurm array tasks, Kubernetes indexed
// Jobs) and joining their answer files again. Shard i of n takes every question whose
// position in the questions file is i mod n, so the split is stable and needs no
// coordination; each answer records that position (metadata.question_index), which is
// what the merge orders by and checks for overlaps and holes.
#pragma once
#include <string>
#include <vector>

#include "eval/benchmark.h"

namespace ficoco::eval {

struct Shard {
  int index = 0, count = 1;  // count 1 = the whole question set
  bool whole() const { return count == 1; }
  bool Takes(size_t position) const { return static_cast<int>(position % count) == index; }
};

// "i/n" with 0 <= i < n; "" is the whole set. Throws Error quoting the text.
Shard ParseShard(const std::string& text);

// "answers.jsonl" or "answers.shard-i-of-n.jsonl" (and "timings..." alike).
std::string AnswersFileName(const Shard& shard);
std::string TimingsFileName(const Shard& shard);
// Recognises a shard file name (any directory, "answers." or "timings." prefix);
// false for names that do not follow the pattern.
bool ShardFromFileName(const std::string& path, Shard* shard);

// question_id as text, the way Question::key spells it ("123", "abc").
std::string AnswerKeyOf(const nlohmann::json& id);

// One answers line as the merge sees it: the exact text (written back verbatim, so a
// merge is byte-identical to an unsharded run) and what it is checked by.
struct AnswerLine {
  std::string text;     // without the newline
  std::string key;      // question_id as text
  std::string prompt;   // with the id, what identifies a question (MME/TextVQA share ids)
  long long question_index = -1;
  std::string file;
  int line = 0;
};

// Reads a complete answers file. Errors (naming file and line): unreadable file,
// malformed or truncated line (an interrupted shard: rerun it to finish), no
// question_id, no metadata.question_index.
std::vector<AnswerLine> ReadAnswerLines(const std::string& path);

struct MergeResult {
  std::vector<AnswerLine> lines;  // in question order
  std::vector<std::string> shard_files_in_order;
};

// Merges shard answer files in question order. Throws Error listing overlaps (a
// position answered twice, or one id + prompt at two positions), holes (positions nobody answered), shard names that do
// not add up (missing shard i of n, mixed n) and answers in the wrong shard.
// With `questions` (non-empty), also checks every question is answered, by its id.
MergeResult MergeShardAnswers(const std::vector<std::string>& files, const QuestionSet* questions);

}  // namespace ficoco::eval
