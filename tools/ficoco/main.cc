// ficoco: run LLaVA-1.5 on a CPU with training-free visual token reduction.
#include <cstdio>
#include <exception>

#include "base/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  ficoco::cli::PreferProcessSettings(argv);
  CLI::App app{
      "ficoco: LLaVA-1.5 on the CPU, with filter-correlate-compress visual token reduction.\n"
      "Models are llava-hf checkpoint directories (config.json, preprocessor_config.json,\n"
      "safetensors weights, optionally sharded) or llama.cpp GGUF pairs (--model X.gguf --mmproj Y.gguf)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ficoco 0.1.0");
  int exit_code = 0;
  ficoco::cli::AddEncodeCommand(app, exit_code);
  ficoco::cli::AddFlopsCommand(app, exit_code);
  ficoco::cli::AddRunCommand(app, exit_code);
  ficoco::cli::AddMethodsCommand(app, exit_code);
  ficoco::cli::AddBenchCommand(app, exit_code);
  ficoco::cli::AddMakeRandomCommand(app, exit_code);
  ficoco::cli::AddQuantizeCommand(app, exit_code);
  ficoco::cli::AddEvalCommand(app, exit_code);
  ficoco::cli::AddEvalMergeCommand(app, exit_code);
  ficoco::cli::AddEvalReportCommand(app, exit_code);
  ficoco::cli::AddEvalScoreCommand(app, exit_code);
  ficoco::cli::AddEvalImagesCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ficoco::Error& e) {
    std::fprintf(stderr, "ficoco: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ficoco: internal error: %s\n", e.what());
    return 2;
  }
  return exit_code;
}
