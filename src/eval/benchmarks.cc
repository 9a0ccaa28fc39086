// The table of benchmarks: prompts and token limits as LLaVA-1.5's evaluation scripts
// use them (model_vqa_loader: 128 new tokens; model_vqa_science / model_vqa: 1024).
#include <sstream>

#include "base/error.h"
#include "eval/benchmark.h"

namespace ficoco::eval {
namespace {
const char* kShort = "\nAnswer the question using a single word or phrase.";
const char* kLetter = "\nAnswer with the option's letter from the given choices directly.";
}  // namespace

const std::vector<BenchmarkInfo>& Benchmarks() {
  static const std::vector<BenchmarkInfo> table = {
      {"sqa", "ScienceQA-IMG: multiple choice, accuracy on the questions with an image", kLetter, 1024, false,
       "problems.json of ScienceQA ({id: {answer, choices, split, image}})"},
      {"textvqa", "TextVQA val: reading text, VQA accuracy (TextVQA evaluator)", kShort, 128, false,
       "TextVQA_0.5.1_val.json ({\"data\": [{question_id, answers[10]}]})"},
      {"pope", "POPE: object hallucination, F1 (also accuracy, precision, recall, yes-ratio) per split", kShort, 128,
       false, "label JSONL {question_id, label: yes|no}, one file per split or several comma-separated"},
      {"gqa", "GQA testdev-balanced: exact match after stripping '.' and lowercasing", kShort, 128, false,
       "testdev_balanced_questions.json ({qid: {answer}})"},
      {"vqav2", "VQAv2: VQA accuracy (LLaVA's EvalAI answer processing + the official evaluator)", kShort, 128,
       false, "VQAv2 annotations ({\"annotations\": [{question_id, answers[10], answer_type}]})"},
      {"vizwiz", "VizWiz-VQA: VQA accuracy (as vqav2), matched by image name", 
       "\nWhen the provided information is insufficient, respond with 'Unanswerable'.\n"
       "Answer the question using a single word or phrase.",
       128, false, "VizWiz val.json ([{image, answers[10]}]); needs --questions too"},
      {"mme", "MME: acc + acc+ per subtask x100, perception (10 subtasks) and cognition (4) totals", kShort, 128,
       false, "questions JSONL with \"answer\": Yes|No per line (the questions file itself may carry it)"},
      {"mmbench", "MMBench (English): option-letter accuracy, single pass and circular", kLetter, 128, false,
       "the MMBench TSV (its answer column)"},
      {"mmbench-cn", "MMBench-CN: as mmbench, Chinese prompt", "\n请直接回答选项字母。", 128, false,
       "the MMBench-CN TSV (its answer column)"},
      {"llava-bench", "LLaVA-Bench (in the wild): free-form answers for a GPT judge", "", 1024, true, ""},
      {"mm-vet", "MM-Vet: free-form answers for a GPT judge", "", 1024, true, ""},
  };
  return table;
}

const BenchmarkInfo& FindBenchmark(const std::string& name) {
  for (const BenchmarkInfo& b : Benchmarks())
    if (b.name == name) return b;
  std::ostringstream known;
  for (const BenchmarkInfo& b : Benchmarks()) known << (known.tellp() > 0 ? ", " : "") << b.name;
  Fail("unknown benchmark '", name, "'; known: ", known.str());
}

}  // namespace ficoco::eval
