// Open-ended VQA scorers: VQAv2, VizWiz, TextVQA (soft VQA accuracy) and GQA (exact match).
#include <unordered_map>

#include "base/error.h"
#include "eval/eval_text.h"
#include "eval/metrics/vqa_answer.h"
#include "eval/score_benchmarks.h"
#include "eval/score_common.h"

namespace ficoco::eval {
namespace {

struct VqaItem {
  std::string key, category;
  std::vector<std::string> humans;
};

void NeedAnnotations(const std::string& bench, const std::string& annotations) {
  if (annotations.empty()) Fail(bench, " needs --annotations: ", FindBenchmark(bench).annotations);
}

// Human answers as strings: [{"answer": ..}] or plain strings.
bool HumanAnswers(const nlohmann::json& list, std::vector<std::string>& out) {
  if (!list.is_array() || list.empty()) return false;
  for (const auto& a : list) {
    if (a.is_string()) out.push_back(a.get<std::string>());
    else if (a.is_object() && a.contains("answer") && a["answer"].is_string()) out.push_back(a["answer"].get<std::string>());
    else return false;
  }
  return true;
}

// Drops items not asked by the questions file; questions without ground truth are problems.
std::vector<VqaItem> Restrict(std::vector<VqaItem> items, const QuestionFilter& f,
                              const std::function<std::string(const Question&)>& key_of, std::vector<Problem>& problems) {
  if (!f.questions) return items;
  std::set<std::string> asked;
  for (const Question& q : f.questions->questions) asked.insert(key_of(q));
  std::set<std::string> have;
  std::vector<VqaItem> kept;
  for (VqaItem& it : items)
    if (asked.count(it.key)) {
      have.insert(it.key);
      kept.push_back(std::move(it));
    }
  for (const Question& q : f.questions->questions)
    if (!have.count(key_of(q)))
      problems.push_back({f.path, q.line, "question_id " + q.key + " has no ground truth (not scored)"});
  return kept;
}

ScoreResult ScoreSoft(const std::string& bench, const std::vector<VqaItem>& items, const AnswerSet& answers,
                      const std::function<std::string(const Answer&)>& key_of,
                      const std::function<double(const std::string&, const std::vector<std::string>&)>& metric,
                      std::vector<Problem> problems) {
  ScoreResult r;
  r.bench = bench;
  r.headline_name = "accuracy";
  std::vector<std::string> keys;
  for (const VqaItem& it : items) keys.push_back(it.key);
  const MatchResult m = MatchAnswers(keys, answers, key_of, problems);
  double sum = 0;
  CategoryMeans cats;
  for (size_t i = 0; i < items.size(); ++i) {
    const double s = Usable(m.answer[i]) ? metric(m.answer[i]->text, items[i].humans) : 0.0;
    sum += s;
    cats.Add(items[i].category, s);
  }
  r.headline = Percent(sum, items.size());
  r.details["accuracy"] = r.headline;
  r.details["categories"] = cats.ToJson();
  r.details["tables"] = nlohmann::json::array({cats.ToTable("By answer type / category")});
  r.problems = std::move(problems);
  FinishResult(r, m, answers, items.size());
  return r;
}

std::function<std::string(const Answer&)> ById() {
  return [](const Answer& a) { return a.key; };
}

}  // namespace

ScoreResult ScoreVqav2(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  NeedAnnotations("vqav2", annotations);
  const nlohmann::json doc = ReadJsonFile(annotations);
  if (!doc.is_object() || !doc.contains("annotations") || !doc["annotations"].is_array())
    Fail(annotations, ": expected {\"annotations\": [...]} (VQAv2 annotation file)");
  std::vector<Problem> problems;
  std::vector<VqaItem> items;
  std::set<std::string> seen;
  const auto& list = doc["annotations"];
  for (size_t k = 0; k < list.size(); ++k) {
    const auto& e = list[k];
    const int rec = static_cast<int>(k) + 1;
    VqaItem it;
    if (!e.is_object() || !e.contains("question_id") || !IsValidId(e["question_id"]) || !HumanAnswers(e.value("answers", nlohmann::json()), it.humans)) {
      problems.push_back({annotations, rec, "annotation " + std::to_string(rec) + ": needs question_id and answers [{answer}]"});
      continue;
    }
    it.key = IdText(e["question_id"]);
    it.category = StringField(e, "answer_type");
    if (!seen.insert(it.key).second) {
      problems.push_back({annotations, rec, "duplicate annotation for question_id " + it.key + " (first kept)"});
      continue;
    }
    items.push_back(std::move(it));
  }
  const QuestionFilter f = LoadFilter("vqav2", questions, problems);
  items = Restrict(std::move(items), f, [](const Question& q) { return q.key; }, problems);
  return ScoreSoft("vqav2", items, answers, ById(), VqaServerAccuracy, std::move(problems));
}

ScoreResult ScoreVizwiz(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  NeedAnnotations("vizwiz", annotations);
  const nlohmann::json doc = ReadJsonFile(annotations);
  if (!doc.is_array()) Fail(annotations, ": expected a JSON array [{image, answers}] (VizWiz annotation file)");
  std::vector<Problem> problems;
  std::vector<VqaItem> items;
  std::set<std::string> seen;
  for (size_t k = 0; k < doc.size(); ++k) {
    const auto& e = doc[k];
    const int rec = static_cast<int>(k) + 1;
    VqaItem it;
    if (!e.is_object() || StringField(e, "image").empty() || !HumanAnswers(e.value("answers", nlohmann::json()), it.humans)) {
      problems.push_back({annotations, rec, "record " + std::to_string(rec) + ": needs image and answers [{answer}]"});
      continue;
    }
    it.key = StringField(e, "image");
    it.category = StringField(e, "answer_type");
    if (!seen.insert(it.key).second) {
      problems.push_back({annotations, rec, "duplicate annotation for image " + it.key + " (first kept)"});
      continue;
    }
    items.push_back(std::move(it));
  }
  // Answers name questions by id, the annotations by image: the questions file links them.
  const QuestionFilter f = LoadFilter("vizwiz", questions, problems);
  std::unordered_map<std::string, std::string> image_of;
  if (f.questions)
    for (const Question& q : f.questions->questions) image_of[q.key] = q.image;
  auto key_of = [image_of](const Answer& a) -> std::string {
    if (auto it = image_of.find(a.key); it != image_of.end()) return it->second;
    return StringField(a.metadata, "image");
  };
  if (!f.questions)
    for (const Answer& a : answers.answers)
      if (StringField(a.metadata, "image").empty())
        Fail("vizwiz: answer at ", answers.path, ":", a.line,
             " does not say its image; give --questions (the file that maps question_id to image)");
  items = Restrict(std::move(items), f, [](const Question& q) { return q.image; }, problems);
  return ScoreSoft("vizwiz", items, answers, key_of, VqaServerAccuracy, std::move(problems));
}

std::string TextVqaPromptQuestion(const std::string& prompt) {
  std::string question;
  size_t start = 0;
  while (start <= prompt.size()) {
    size_t end = prompt.find('\n', start);
    if (end == std::string::npos) end = prompt.size();
    std::string line = prompt.substr(start, end - start);
    start = end + 1;
    if (line.rfind("Reference OCR token:", 0) == 0 || line == "Answer the question using a single word or phrase.")
      continue;
    if (line.rfind("Question: ", 0) == 0) line = line.substr(10);
    question = line;
    break;
  }
  return LowerAscii(question);
}

ScoreResult ScoreTextvqa(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  NeedAnnotations("textvqa", annotations);
  const nlohmann::json doc = ReadJsonFile(annotations);
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
    Fail(annotations, ": expected {\"data\": [...]} (TextVQA annotation file)");
  std::vector<Problem> problems;
  std::vector<VqaItem> items;
  std::set<std::string> seen;
  // LLaVA's TextVQA questions use the image id as question_id: (image_id, question) finds the item.
  std::unordered_map<std::string, std::string> by_image_question;
  const auto& list = doc["data"];
  for (size_t k = 0; k < list.size(); ++k) {
    const auto& e = list[k];
    const int rec = static_cast<int>(k) + 1;
    VqaItem it;
    if (!e.is_object() || !HumanAnswers(e.value("answers", nlohmann::json()), it.humans) ||
        !((e.contains("question_id") && IsValidId(e["question_id"])) || !StringField(e, "image_id").empty())) {
      problems.push_back({annotations, rec, "record " + std::to_string(rec) + ": needs question_id (or image_id) and answers"});
      continue;
    }
    const std::string alt = StringField(e, "image_id") + "\t" + LowerAscii(StringField(e, "question"));
    it.key = e.contains("question_id") && IsValidId(e["question_id"]) ? IdText(e["question_id"]) : alt;
    if (!seen.insert(it.key).second) {
      problems.push_back({annotations, rec, "duplicate annotation for question_id " + it.key + " (first kept)"});
      continue;
    }
    if (!StringField(e, "image_id").empty()) by_image_question.emplace(alt, it.key);
    items.push_back(std::move(it));
  }
  auto resolve = [&seen, by_image_question](const std::string& id, const std::string& prompt) -> std::string {
    if (seen.count(id)) return id;
    auto it = by_image_question.find(id + "\t" + TextVqaPromptQuestion(prompt));
    return it == by_image_question.end() ? "" : it->second;
  };
  const QuestionFilter f = LoadFilter("textvqa", questions, problems);
  items = Restrict(std::move(items), f, [&](const Question& q) { return resolve(q.key, q.prompt); }, problems);
  return ScoreSoft("textvqa", items, answers, [&](const Answer& a) { return resolve(a.key, a.prompt); },
                   TextVqaAccuracy, std::move(problems));
}

ScoreResult ScoreGqa(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  NeedAnnotations("gqa", annotations);
  const nlohmann::json doc = ReadJsonFile(annotations);
  if (!doc.is_object()) Fail(annotations, ": expected {\"<question id>\": {\"answer\": ...}} (GQA questions file)");
  std::vector<Problem> problems;
  std::vector<VqaItem> items;
  int rec = 0;
  for (auto e = doc.begin(); e != doc.end(); ++e) {
    ++rec;
    VqaItem it;
    it.key = e.key();
    if (!e.value().is_object() || StringField(e.value(), "answer").empty()) {
      problems.push_back({annotations, rec, "question " + it.key + ": no \"answer\" string"});
      continue;
    }
    it.humans = {StringField(e.value(), "answer")};
    if (e.value().contains("types")) it.category = StringField(e.value()["types"], "structural");
    items.push_back(std::move(it));
  }
  const QuestionFilter f = LoadFilter("gqa", questions, problems);
  items = Restrict(std::move(items), f, [](const Question& q) { return q.key; }, problems);
  // LLaVA's convert_gqa_for_eval.py: strip trailing periods, lowercase; then exact match.
  auto exact = [](const std::string& text, const std::vector<std::string>& gold) {
    std::string p = text;
    while (!p.empty() && p.back() == '.') p.pop_back();
    return LowerAscii(p) == gold[0] ? 1.0 : 0.0;
  };
  return ScoreSoft("gqa", items, answers, ById(), exact, std::move(problems));
}

}  // namespace ficoco::eval
