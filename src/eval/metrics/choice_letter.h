// Multiple-choice replies -> the index of the chosen option (0 = "A"), or -1 when the
// reply names no valid option (scored wrong and counted, never guessed).
#pragma once
#include <string>
#include <vector>

namespace ficoco::eval {

// ScienceQA as LLaVA-1.5's eval_science_qa.py reads a reply: exactly one of "A".."E";
// else a reply starting "X. "; else exactly one match of "The answer is X" followed by
// one more character (any but a newline; the script's '.' is unescaped). The letter
// must name one of the `num_choices` options. LLaVA's first release then picked a
// random option for an unparseable reply; its later script returns -1 (wrong), as we do.
int SqaChoiceIndex(const std::string& reply, int num_choices);

// MMBench: LLaVA only writes the reply for the official server, so this follows the
// server's deterministic matching (without its GPT fallback), in order: the reply is
// one option letter (optionally in parentheses or followed by '.'); it starts with a
// letter followed by '.', ')', ':' or a space; "answer is X" / "answer: X"; exactly one
// option letter appears as a standalone capital; the reply equals one option's text
// (case-insensitive, trailing '.' ignored); exactly one option's text occurs in it.
int MmbenchChoiceIndex(const std::string& reply, const std::vector<std::string>& options);

}  // namespace ficoco::eval
