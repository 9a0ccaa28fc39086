// Subcommands of the `ficoco` tool. Each file registers one subcommand on the CLI11
// app and returns the callback's exit status through `exit_code`.
#pragma once
#include <CLI/CLI.hpp>

namespace ficoco::cli {

void AddEncodeCommand(CLI::App& app, int& exit_code);
void AddFlopsCommand(CLI::App& app, int& exit_code);
void AddMakeRandomCommand(CLI::App& app, int& exit_code);
void AddRunCommand(CLI::App& app, int& exit_code);
void AddMethodsCommand(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);
void AddQuantizeCommand(CLI::App& app, int& exit_code);
void AddEvalCommand(CLI::App& app, int& exit_code);
void AddEvalMergeCommand(CLI::App& app, int& exit_code);
void AddEvalReportCommand(CLI::App& app, int& exit_code);
void AddEvalScoreCommand(CLI::App& app, int& exit_code);
void AddEvalImagesCommand(CLI::App& app, int& exit_code);

// Applies --threads (0 = all cores) to OpenMP and oneDNN; returns the count used.
int SetThreads(int requested);
// Restarts the process with OMP_WAIT_POLICY=PASSIVE and glibc's huge-page tunable unless
// the user set those variables (see threads.cc).
void PreferProcessSettings(char** argv);

}  // namespace ficoco::cli
