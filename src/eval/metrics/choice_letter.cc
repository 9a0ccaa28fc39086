#include "eval/metrics/choice_letter.h"

#include <cctype>
#include <set>

namespace ficoco::eval {
namespace {

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  for (char& c : s)
    if (IsUpper(c)) c = static_cast<char>(c - 'A' + 'a');
  return s;
}

int LetterIndex(char c, int n) { return IsUpper(c) && c - 'A' < n ? c - 'A' : -1; }

}  // namespace

int SqaChoiceIndex(const std::string& reply, int num_choices) {
  const int n = std::min(num_choices, 5);  // the script's options are A..E
  if (reply.size() == 1 && reply[0] >= 'A' && reply[0] <= 'E') return LetterIndex(reply[0], n);
  if (reply.size() >= 3 && reply[0] >= 'A' && reply[0] <= 'E' && reply.compare(1, 2, ". ") == 0)
    return LetterIndex(reply[0], n);
  const std::string lead = "The answer is ";
  int matches = 0;
  char letter = 0;
  size_t from = 0;
  for (size_t pos = reply.find(lead); pos != std::string::npos; pos = reply.find(lead, from)) {
    const size_t at = pos + lead.size();
    from = pos + 1;
    if (at + 1 < reply.size() && IsUpper(reply[at]) && reply[at + 1] != '\n') {
      ++matches;  // like re.findall: the next match starts after this one
      letter = reply[at];
      from = at + 2;
    }
  }
  if (matches == 1 && letter <= 'E') return LetterIndex(letter, n);
  return -1;
}

int MmbenchChoiceIndex(const std::string& reply, const std::vector<std::string>& options) {
  const int n = static_cast<int>(options.size());
  std::string t = Trim(reply);
  while (!t.empty() && (t.back() == '.' || std::isspace(static_cast<unsigned char>(t.back())))) t.pop_back();
  if (t.size() == 1) return LetterIndex(t[0], n);
  if (t.size() >= 3 && t[0] == '(' && t[2] == ')' && LetterIndex(t[1], n) >= 0) return LetterIndex(t[1], n);
  if (t.size() >= 2 && LetterIndex(t[0], n) >= 0 &&
      (t[1] == '.' || t[1] == ')' || t[1] == ':' || std::isspace(static_cast<unsigned char>(t[1]))))
    // "A dog ..." would read as option A: only take it when the rest is not a sentence
    // starting with the article (the letter is followed by a punctuation mark).
    if (t[1] != ' ' || t.size() < 3 || !std::islower(static_cast<unsigned char>(t[2]))) return LetterIndex(t[0], n);
  const std::string lower = Lower(t);
  for (const std::string lead : {"answer is ", "answer: ", "answer:"}) {
    const size_t pos = lower.find(lead);
    if (pos == std::string::npos) continue;
    size_t at = pos + lead.size();
    if (at < t.size() && t[at] == '(') ++at;
    if (at < t.size() && LetterIndex(t[at], n) >= 0 && (at + 1 == t.size() || !IsAlnum(t[at + 1])))
      return LetterIndex(t[at], n);
  }
  std::set<int> standalone;
  for (size_t i = 0; i < t.size(); ++i) {
    if (LetterIndex(t[i], n) < 0) continue;
    if ((i == 0 || !IsAlnum(t[i - 1])) && (i + 1 == t.size() || !IsAlnum(t[i + 1]))) standalone.insert(t[i] - 'A');
  }
  if (standalone.size() == 1 && !(t[0] == 'A' && t.size() > 1 && t[1] == ' ')) return *standalone.begin();
  int contained = -1, count = 0;
  for (int k = 0; k < n; ++k) {
    std::string opt = Lower(Trim(options[k]));
    while (!opt.empty() && opt.back() == '.') opt.pop_back();
    if (opt.empty()) continue;
    if (opt == lower) return k;
    if (lower.find(opt) != std::string::npos) {
      contained = k;
      ++count;
    }
  }
  return count == 1 ? contained : -1;
}

}  // namespace ficoco::eval
