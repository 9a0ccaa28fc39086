// `ficoco methods`: the token-reduction methods, where they act and what tunes them.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "reduce/methods.h"

namespace ficoco::cli {

void AddMethodsCommand(CLI::App& app, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("methods", "List the token-reduction methods, where they act and their options.");
  sub->add_flag("--json", *json, "Print a JSON array of {name, site, summary, options}");
  sub->callback([json, &exit_code] {
    if (*json) {
      nlohmann::json out = nlohmann::json::array();
      for (const MethodInfo& m : AllMethods())
        out.push_back({{"name", m.name}, {"site", MethodSiteName(m.site)}, {"summary", m.summary}, {"options", m.params}});
      std::cout << out.dump(2) << std::endl;
    } else {
      for (const MethodInfo& m : AllMethods()) {
        std::printf("%-10s  acts in: %s\n    %s\n", m.name.c_str(), MethodSiteName(m.site), m.summary.c_str());
        if (!m.params.empty()) {
          std::printf("    options:");
          for (const std::string& p : m.params) std::printf(" %s", p.c_str());
          std::printf("\n");
        }
      }
    }
    exit_code = 0;
  });
}

}  // namespace ficoco::cli
