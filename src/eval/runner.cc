#include "eval/runner.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "base/error.h"
#include "base/timer.h"
#include "engine/llava_model.h"
#include "engine/pipeline.h"
#include "eval/progress.h"
#include "eval/report.h"
#include "eval/runner_journal.h"
#include "image/image.h"
#include "reduce/methods.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ficoco::eval {
namespace {

namespace fs = std::filesystem;

std::string ModelIdOf(const EvalOptions& o) {
  if (!o.model_id.empty()) return o.model_id;
  fs::path p = fs::path(o.model_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "dir/" → "dir"
  return p.filename().string();
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The run settings every answer records; a resumed file must carry the same ones.
nlohmann::json RunSettings(const std::string& model_id, const EvalOptions& o) {
  return {{"model_id", model_id}, {"method", o.method}, {"keep", o.budget.keep}, {"tflops", o.budget.tflops}};
}

// Returns the positions answered in `records`, after checking each belongs to this
// questions file (its position holds its id) and to this run's settings.
std::set<size_t> CheckResumable(const std::string& path, const std::vector<nlohmann::json>& records,
                                const nlohmann::json& settings, const QuestionSet& qs) {
  std::set<size_t> done;
  int line = 0;
  for (const nlohmann::json& r : records) {
    ++line;
    if (!r.contains("question_id")) Fail(path, ":", line, ": no question_id");
    const std::string key = AnswerKeyOf(r["question_id"]);
    const nlohmann::json meta = r.value("metadata", nlohmann::json::object());
    const auto index = meta.find("question_index");
    if (index == meta.end() || !index->is_number_integer() || index->get<long long>() < 0)
      Fail(path, ":", line, ": no metadata.question_index: not written by `ficoco eval`; use another --out");
    const size_t p = index->get<size_t>();
    // MME and TextVQA share ids between questions: the position is the identity, the id a check.
    if (p >= qs.questions.size() || qs.questions[p].key != key)
      Fail(path, ":", line, ": question_id ", key, " at position ", p,
           " does not match the questions file: this answers file belongs to other questions; use another --out");
    nlohmann::json theirs = {{"model_id", r.value("model_id", "")}};
    for (const char* k : {"method", "keep", "tflops"}) theirs[k] = meta.contains(k) ? meta[k] : nlohmann::json();
    if (theirs != settings)
      Fail(path, ":", line, ": written by another run (", theirs.dump(), ") than this one (", settings.dump(),
           "): use another --out");
    if (!done.insert(p).second) Fail(path, ":", line, ": question position ", p, " answered twice");
  }
  return done;
}

// What one question needs from the loaded model.
struct Engine {
  std::unique_ptr<LlavaModel> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<GemmContext> gemm;
};

Engine LoadEngine(const EvalOptions& o) {
  Engine e;
  LoadOptions lo;
  lo.compute = o.compute;
  lo.weights = o.weights;
  lo.kv_cache = o.kv_cache;
  e.model = LlavaModel::Load(o.model_dir, o.mmproj, lo);
  e.tok = std::make_unique<Tokenizer>(e.model->LoadTokenizer(o.tokenizer));
  const LlavaConfig& cfg = e.model->config();
  if (e.tok->vocab_size() > cfg.text.vocab_size)
    Fail("tokenizer has ", e.tok->vocab_size(), " pieces but the model's vocabulary has only ", cfg.text.vocab_size);
  if (cfg.image_token_index < e.tok->vocab_size())
    Fail("the model's image_token_index ", cfg.image_token_index, " is a regular piece of this tokenizer (",
         e.tok->vocab_size(), " pieces): tokenizer and model do not match");
  e.gemm = std::make_unique<GemmContext>(o.compute);
  return e;
}

struct Answered {
  nlohmann::json answer;
  nlohmann::json timing;  // null for an error answer
};

Answered AnswerQuestion(Engine& e, const EvalOptions& o, const BenchmarkInfo& info, const Question& q, size_t position,
                        const std::string& model_id) {
  Answer a;
  a.id = q.id;
  a.key = q.key;
  a.prompt = q.prompt;
  a.model_id = model_id;
  a.metadata = {{"question_index", position}, {"method", o.method}, {"keep", o.budget.keep}, {"tflops", o.budget.tflops}};
  Answered out;
  a.answer_id = AnswerIdFor(model_id, q.key, q.prompt, o.method, o.budget);
  // Fields the benchmark's answer format carries back (MMBench's round_id, options, ...).
  if (q.extra.is_object()) a.extra = q.extra;
  auto finish = [&] {
    out.answer = AnswerToJson(a);
    return out;
  };

  Stopwatch clock;
  const bool with_image = !q.image.empty();
  ImageU8 image;
  if (with_image) {
    const std::string path = (fs::path(o.images) / q.image).string();
    try {
      if (!fs::exists(path)) Fail("image not found: ", path);
      image = DecodeImageFile(path);
    } catch (const Error& err) {
      a.metadata["error"] = err.what();
      return finish();
    }
  }
  const double read_s = clock.Seconds();
  const LlavaConfig& cfg = e.model->config();
  PipelineRequest req;
  req.prompt_ids = TokenizeWithImages(*e.tok, ApplyLlava15Template(q.prompt, with_image), cfg.image_token_index);
  req.image = with_image ? &image : nullptr;
  if (with_image) {
    req.method = &FindMethod(o.method);
    req.params = o.params;
    req.budget = o.budget;
  } else if (o.method != "none") {
    a.metadata["reduction_skipped"] = "text-only question";  // nothing to reduce
  }
  req.max_new_tokens = o.max_new_tokens > 0 ? o.max_new_tokens : info.max_new_tokens;
  if (o.max_new_tokens == 0) {
    // The benchmark's limit is a cap, not a length to reach: a model with a short
    // context (MiniLLaVA: 1024 positions, SQA allows 1024 new tokens) gets what fits
    // after the unreduced prompt (the same cap for every method).
    const int64_t prompt = static_cast<int64_t>(req.prompt_ids.size()) - (with_image ? 1 : 0) +
                           (with_image ? cfg.vision.num_patches() : 0);
    const int64_t room = cfg.text.max_position_embeddings - prompt;
    if (room < req.max_new_tokens) {
      req.max_new_tokens = static_cast<int>(std::max<int64_t>(1, room));
      a.metadata["max_new_tokens"] = req.max_new_tokens;
    }
  }
  req.sampling = SamplingParams{};  // greedy
  std::string text;
  StreamingDecoder stream(*e.tok);
  req.on_token = [&](int id) {
    if (id != cfg.text.eos_token_id && e.tok->IsValidId(id)) text += stream.Push(id);
  };
  PipelineResult r;
  try {
    r = RunPipeline(*e.gemm, *e.model, req);
  } catch (const Error& err) {
    Fail("question ", q.key, " (", o.questions, " line ", q.line, "): ", err.what(),
         "\nthe answers so far are saved; fix the cause and rerun to resume");
  }
  text += stream.Finish();
  a.text = Trim(text);  // LLaVA strips the decoded output
  const GenerateResult& g = r.generated;
  a.metadata.update({{"image_tokens", r.flow.image_tokens},
                     {"llm_visual_tokens_mean", r.flow.mean_llm_visual()},
                     {"prompt_tokens", g.prompt_tokens},
                     {"new_tokens", g.new_ids.size()},
                     {"stopped_at_eos", g.hit_eos},
                     {"llm_prefill_tflops", r.cost.llm_prefill_flops / 1e12},
                     {"vision_tflops", (r.cost.vision_flops + r.cost.projector_flops) / 1e12}});
  const double steps = static_cast<double>(g.new_ids.size()) - 1;
  out.timing = {{"question_id", q.id},
                {"question_index", position},
                {"time_to_first_token_s", read_s + r.first_token_s},
                {"encode_s", read_s + r.encode_s},
                {"prefill_s", g.prefill_s},
                {"decode_s", g.decode_s},
                {"decode_steps", steps > 0 ? steps : 0.0},
                {"total_s", read_s + r.total_s}};
  return finish();
}

}  // namespace

std::string AnswerIdFor(const std::string& model_id, const std::string& key, const std::string& prompt,
                        const std::string& method, const Budget& budget) {
  // FNV-1a over the fields that make an answer unique: same inputs, same id.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // field separator
  };
  mix(model_id);
  mix(key);
  mix(prompt);
  mix(method);
  mix(std::to_string(budget.keep));
  mix(nlohmann::json(budget.tflops).dump());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

EvalOutcome RunEval(const EvalOptions& o) {
  const BenchmarkInfo& info = FindBenchmark(o.bench);
  // Setting errors before anything is read or loaded (RunPipeline would say the same per question).
  const MethodInfo& method = FindMethod(o.method);
  if (method.site != MethodSite::None && !o.budget.set())
    Fail("--method ", o.method, " needs a budget: --keep N (visual tokens) or --tflops X");
  if (method.site == MethodSite::None && o.budget.set()) Fail("--keep and --tflops need a reduction method (--method)");
  if (o.images.empty()) Fail("--images is required (the folder the questions' image paths are relative to)");
  if (o.out_dir.empty()) Fail("--out is required");
  QuestionSet qs = LoadQuestions(o.bench, o.questions);
  for (const Problem& p : qs.problems)
    std::fprintf(o.log, "warning: %s:%d: %s\n", p.file.c_str(), p.line, p.message.c_str());

  // This run's questions: the shard's positions, then --limit. (The loader has already
  // dropped exact duplicates, reporting them as problems.)
  std::vector<size_t> selected;
  for (size_t p = 0; p < qs.questions.size(); ++p)
    if (o.shard.Takes(p) && (o.limit < 0 || static_cast<long long>(selected.size()) < o.limit)) selected.push_back(p);

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) Fail("cannot create --out directory '", o.out_dir, "': ", ec.message());
  EvalOutcome out;
  out.selected = static_cast<long long>(selected.size());
  out.answers_path = (fs::path(o.out_dir) / AnswersFileName(o.shard)).string();
  const std::string model_id = ModelIdOf(o);
  Journal answers(out.answers_path);
  Journal timings((fs::path(o.out_dir) / TimingsFileName(o.shard)).string());
  if (answers.dropped_bytes() > 0)
    std::fprintf(o.log, "note: %s ended in a truncated line (interrupted run): %zu bytes dropped\n",
                 out.answers_path.c_str(), answers.dropped_bytes());
  const std::set<size_t> done = CheckResumable(out.answers_path, answers.records(), RunSettings(model_id, o), qs);
  std::vector<size_t> todo;
  for (size_t p : selected)
    if (!done.count(p)) todo.push_back(p);
  out.resumed = out.selected - static_cast<long long>(todo.size());

  if (!todo.empty()) {
    Engine engine = LoadEngine(o);  // only when there is work: a finished run just rescores
    ProgressMeter progress(out.selected, out.resumed, o.log, o.tty, o.progress_interval_s);
    for (size_t p : todo) {
      Answered a = AnswerQuestion(engine, o, info, qs.questions[p], p, model_id);
      if (!a.timing.is_null()) timings.Append(a.timing);
      answers.Append(a.answer);  // last: an answer on disk implies its timing is too
      ++out.answered_now;
      progress.Step();
    }
    progress.Finish();
  }
  for (const nlohmann::json& r : answers.records())
    if (r.contains("metadata") && r["metadata"].contains("error")) ++out.errors;
  if (out.errors > 0)
    std::fprintf(o.log, "%lld question(s) could not be asked (missing or unreadable image): see metadata.error in %s\n",
                 out.errors, out.answers_path.c_str());

  if (!o.shard.whole()) {
    out.not_scored_reason = "shard " + std::to_string(o.shard.index) + "/" + std::to_string(o.shard.count) +
                            ": merge the shards with `ficoco eval-merge`, then score";
    std::fprintf(o.log, "%s\n", out.not_scored_reason.c_str());
    return out;
  }
  ScoreResult score;
  if (info.needs_judge) {
    out.not_scored_reason = info.name + " is judged by an external model (GPT-4 in LLaVA's protocol): answers written, not scored";
  } else if (!o.annotations.empty()) {
    score = ScoreAnswers(o.bench, ReadAnswers(out.answers_path), o.annotations, o.questions);
    out.scored = true;
  } else {
    // Some formats carry the ground truth in the questions file (MME, MMBench); the
    // scorer says so by not failing. Without annotations a refusal is not an error.
    try {
      score = ScoreAnswers(o.bench, ReadAnswers(out.answers_path), "", o.questions);
      out.scored = true;
    } catch (const Error& e) {
      out.not_scored_reason = std::string("no --annotations: ") + e.what();
    }
  }
  RunFacts facts;
  facts.bench = info.name;
  facts.model_id = model_id;
  facts.method = o.method;
  facts.compute = ComputeTypeName(o.compute);
  facts.kv_cache = KvTypeName(ResolveKvCache(o.kv_cache, o.compute));
  facts.keep = o.budget.keep;
  facts.tflops_budget = o.budget.tflops;
  facts.threads = o.threads;
  facts.questions = static_cast<long long>(qs.questions.size());
  facts.selected = out.selected;
  facts.question_problems = qs.problems;
  out.summary = SummarizeRun(facts, answers.records(), timings.records(), out.scored ? &score : nullptr,
                             out.not_scored_reason);
  WriteRunReport(o.out_dir, out.summary, out.scored ? score.ToMarkdown() : std::string());
  return out;
}

}  // namespace ficoco::eval
