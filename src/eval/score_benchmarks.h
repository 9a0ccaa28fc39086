// One scorer per benchmark family (internal; ScoreAnswers dispatches). Each reads its
// ground truth, restricts it to the questions file when one is given, matches the
// answers and applies the official metric.
#pragma once
#include <string>

#include "eval/benchmark.h"

namespace ficoco::eval {

ScoreResult ScoreVqav2(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScoreVizwiz(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScoreTextvqa(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScoreGqa(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScorePope(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScoreMme(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScoreSqa(const AnswerSet& answers, const std::string& annotations, const std::string& questions);
ScoreResult ScoreMmbench(const std::string& bench, const AnswerSet& answers, const std::string& annotations,
                         const std::string& questions);
ScoreResult ScoreJudged(const std::string& bench, const AnswerSet& answers, const std::string& questions);

// The question a TextVQA prompt asks, as LLaVA's eval_textvqa.py recovers it (OCR
// reference line and the answer-format line removed, "Question: " dropped), lowercased.
std::string TextVqaPromptQuestion(const std::string& prompt);

}  // namespace ficoco::eval
