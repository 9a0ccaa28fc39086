// Command-line options shared by every command that runs or accounts a token
// reduction (`run`, `flops`): the method, its budget and its hyperparameters.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "reduce/budget.h"
#include "reduce/methods.h"
#include "reduce/params.h"

namespace ficoco::cli {

struct ReductionArgs {
  std::string method = "none";
  int64_t keep = -1;
  double tflops = -1;
  std::string preset = "paper", positions = "auto";
  ReductionParams params;

  const MethodInfo& Method() const { return FindMethod(method); }
  Budget GetBudget() const { return Budget{keep, tflops}; }
  // Parameters with the preset and position policy applied; validated.
  ReductionParams Params() const { return ParamsFor(Method()); }
  // "auto" positions resolve to `method`'s original policy.
  ReductionParams ParamsFor(const MethodInfo& method) const;
};

// Adds every FiCoCo hyperparameter to `sub`, and --method, --keep, --tflops when
// `with_method_and_budget` (commands that sweep several methods add their own lists).
void AddReductionOptions(CLI::App* sub, ReductionArgs& args, bool with_method_and_budget = true);

}  // namespace ficoco::cli
