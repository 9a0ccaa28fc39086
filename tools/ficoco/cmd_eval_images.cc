// `ficoco eval-images`: write the base64 pictures of an MMBench TSV to image files so
// `ficoco eval --images DIR` can read them.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "eval/benchmark.h"

namespace ficoco::cli {

void AddEvalImagesCommand(CLI::App& app, int& exit_code) {
  struct Args {
    std::string tsv, out;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "eval-images",
      "Extract the base64 pictures of an MMBench / MMBench-CN TSV (its 'image' column) into --out as <index>.png or\n"
      "<index>.jpg, the file names `ficoco eval --bench mmbench` expects under --images.");
  sub->add_option("--tsv", a->tsv, "MMBench TSV with an 'image' column")->required();
  sub->add_option("--out", a->out, "Folder to write the pictures to (created)")->required();
  sub->callback([a, &exit_code] {
    const int n = eval::ExtractTsvImages(a->tsv, a->out);
    std::printf("wrote %d images to %s\n", n, a->out.c_str());
    exit_code = 0;
  });
}

}  // namespace ficoco::cli
