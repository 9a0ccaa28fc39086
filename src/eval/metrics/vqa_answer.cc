#include "eval/metrics/vqa_answer.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_map>

namespace ficoco::eval {
namespace {

// Contractions the VQA evaluators restore (written without apostrophe -> with). The
// capitalised entries can never match after lowercasing; they are in the official
// table, so they stay. "somebody'd" -> "somebodyd" is reversed there too: kept.
const std::unordered_map<std::string_view, std::string_view>& Contractions() {
  static const std::unordered_map<std::string_view, std::string_view> table = {
      {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"},
      {"couldnt", "couldn't"}, {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"},
      {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"}, {"hadnt", "hadn't"},
      {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"}, {"hasnt", "hasn't"}, {"havent", "haven't"},
      {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"}, {"hes", "he's"}, {"howd", "how'd"},
      {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"},
      {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"}, {"it'dve", "it'd've"},
      {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
      {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"},
      {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"},
      {"oclock", "o'clock"}, {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"},
      {"'ow'sat", "'ow's'at"}, {"shant", "shan't"}, {"shed've", "she'd've"}, {"she'dve", "she'd've"},
      {"she's", "she's"}, {"shouldve", "should've"}, {"shouldnt", "shouldn't"},
      {"shouldnt've", "shouldn't've"}, {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"},
      {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"},
      {"somebodys", "somebody's"}, {"someoned", "someone'd"}, {"someoned've", "someone'd've"},
      {"someone'dve", "someone'd've"}, {"someonell", "someone'll"}, {"someones", "someone's"},
      {"somethingd", "something'd"}, {"somethingd've", "something'd've"},
      {"something'dve", "something'd've"}, {"somethingll", "something'll"}, {"thats", "that's"},
      {"thered", "there'd"}, {"thered've", "there'd've"}, {"there'dve", "there'd've"},
      {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
      {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
      {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"},
      {"weve", "we've"}, {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"},
      {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"},
      {"wheres", "where's"}, {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"},
      {"who'dve", "who'd've"}, {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"},
      {"whyll", "why'll"}, {"whyre", "why're"}, {"whys", "why's"}, {"wont", "won't"},
      {"wouldve", "would've"}, {"wouldnt", "wouldn't"}, {"wouldnt've", "wouldn't've"},
      {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"},
      {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"},
      {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"},
      {"youre", "you're"}, {"youve", "you've"},
  };
  return table;
}

const std::unordered_map<std::string_view, std::string_view>& NumberWords() {
  static const std::unordered_map<std::string_view, std::string_view> table = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"},   {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"},
  };
  return table;
}

constexpr std::string_view kPunctuation = ";/[]\"{}()=+\\_-><@`,?!";  // order irrelevant: each is handled alone

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// Python's str.split() whitespace within ASCII (includes the \x1c-\x1f separators).
bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); }

// ASCII lowercase (Python lowercases all of Unicode; answers are English).
std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string Strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && IsSpace(s[b])) ++b;
  while (e > b && IsSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

bool HasDigitCommaDigit(const std::string& s, bool comma_run) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (!IsDigit(s[i]) || s[i + 1] != ',') continue;
    size_t j = i + 1;
    if (comma_run)
      while (j < s.size() && s[j] == ',') ++j;
    else
      ++j;
    if (j < s.size() && IsDigit(s[j])) return true;
  }
  return false;
}

std::string Tabs(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

}  // namespace

std::string VqaWordTokenize(const std::string& text) {
  std::string s = Lower(text);
  s = ReplaceAll(s, ",", "");
  s = ReplaceAll(s, "?", "");
  s = ReplaceAll(s, "'s", " 's");
  return Strip(s);
}

std::string VqaProcessPunctuation(const std::string& in, bool comma_run) {
  const bool digit_comma = HasDigitCommaDigit(in, comma_run);
  std::string out = in;
  for (char p : kPunctuation) {
    const bool touches_space = in.find(std::string{p, ' '}) != std::string::npos ||
                               in.find(std::string{' ', p}) != std::string::npos;
    std::string replaced;
    replaced.reserve(out.size());
    for (char c : out) {
      if (c != p)
        replaced += c;
      else if (!(touches_space || digit_comma))
        replaced += ' ';
    }
    out = std::move(replaced);
  }
  // Periods: the lookahead sees the string before any removal; at most 32 removals.
  std::string result;
  result.reserve(out.size());
  int removed = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const bool strip = out[i] == '.' && !(i + 1 < out.size() && IsDigit(out[i + 1])) && removed < 32;
    if (strip)
      ++removed;
    else
      result += out[i];
  }
  return result;
}

std::string VqaProcessDigitArticle(const std::string& text) {
  const std::string lower = Lower(text);
  std::vector<std::string> words;
  size_t i = 0;
  while (i < lower.size()) {
    while (i < lower.size() && IsSpace(lower[i])) ++i;
    size_t j = i;
    while (j < lower.size() && !IsSpace(lower[j])) ++j;
    if (j > i) {
      std::string w = lower.substr(i, j - i);
      if (auto it = NumberWords().find(w); it != NumberWords().end()) w = it->second;
      if (w != "a" && w != "an" && w != "the") words.push_back(std::move(w));
    }
    i = j;
  }
  std::string out;
  for (size_t k = 0; k < words.size(); ++k) {
    if (auto it = Contractions().find(words[k]); it != Contractions().end()) words[k] = it->second;
    if (k > 0) out += ' ';
    out += words[k];
  }
  return out;
}

std::string EvalAiNormalize(const std::string& text) {
  std::string s = Strip(Tabs(VqaWordTokenize(text)));
  return VqaProcessDigitArticle(VqaProcessPunctuation(s, /*comma_run=*/true));
}

double LeaveOneOutAccuracy(const std::string& prediction, const std::vector<std::string>& humans) {
  if (humans.empty()) return 0.0;
  double sum = 0;
  const int total = static_cast<int>(std::count(humans.begin(), humans.end(), prediction));
  for (const std::string& h : humans) {
    const int others = total - (h == prediction ? 1 : 0);
    sum += std::min(1.0, others / 3.0);
  }
  return sum / static_cast<double>(humans.size());
}

double VqaServerAccuracy(const std::string& prediction, std::vector<std::string> humans) {
  std::string res = Strip(Tabs(EvalAiNormalize(prediction)));
  res = VqaProcessDigitArticle(VqaProcessPunctuation(res, /*comma_run=*/false));
  if (std::set<std::string>(humans.begin(), humans.end()).size() > 1)
    for (std::string& h : humans) h = VqaProcessPunctuation(h, /*comma_run=*/false);
  return LeaveOneOutAccuracy(res, humans);
}

double TextVqaAccuracy(const std::string& prediction, const std::vector<std::string>& humans) {
  std::vector<std::string> norm;
  norm.reserve(humans.size());
  for (const std::string& h : humans) norm.push_back(EvalAiNormalize(h));
  return LeaveOneOutAccuracy(EvalAiNormalize(prediction), norm);
}

}  // namespace ficoco::eval
