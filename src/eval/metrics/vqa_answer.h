// Answer normalisation of the VQA family of benchmarks, as the official evaluators
// define it: the EvalAI answer processor (what LLaVA applies before a VQAv2/VizWiz
// submission and what the TextVQA evaluator applies to both sides) and the steps of
// the VQA evaluation server. Every quirk is kept on purpose: scores must be comparable
// with published numbers, not "improved".
#pragma once
#include <string>
#include <vector>

namespace ficoco::eval {

// Lowercases, deletes ',' and '?', splits "'s" off ("it's" -> "it 's"), trims.
std::string VqaWordTokenize(const std::string& text);

// Punctuation rule: each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? ! is deleted when it
// touches a space anywhere in the input or the input holds a digit-comma-digit
// sequence, else replaced by a space. Then every '.' not followed by a digit is
// deleted (at most 32 of them: the evaluators pass re.UNICODE where `count` goes).
// `comma_run`: the EvalAI form matches digit, one or more commas, digit; the VQA
// server form exactly one comma.
std::string VqaProcessPunctuation(const std::string& text, bool comma_run = true);

// Lowercases and splits on whitespace; number words zero..ten and "none" become
// digits, articles a/an/the are dropped, contractions written without apostrophe get
// one ("dont" -> "don't"); words joined with single spaces.
std::string VqaProcessDigitArticle(const std::string& text);

// The full EvalAI answer processor: tokenize, newlines/tabs to spaces, punctuation,
// digits and articles.
std::string EvalAiNormalize(const std::string& text);

// VQA accuracy of one prediction against its (usually 10) human answers: the mean over
// the leave-one-out subsets of min(#matches / 3, 1).
double LeaveOneOutAccuracy(const std::string& prediction, const std::vector<std::string>& humans);

// VQAv2 / VizWiz as LLaVA scores them: EvalAI processing of the prediction (LLaVA's
// submission converter), then the evaluation server: the prediction is processed
// again (punctuation, digits/articles), the human answers get the punctuation rule
// only and only when they are not unanimous.
double VqaServerAccuracy(const std::string& prediction, std::vector<std::string> humans);

// TextVQA's evaluator: EvalAI processing of the prediction and of every human answer.
double TextVqaAccuracy(const std::string& prediction, const std::vector<std::string>& humans);

}  // namespace ficoco::eval
