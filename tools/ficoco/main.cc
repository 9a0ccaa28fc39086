// ficoco command-line tool (subcommands are wired up in later files).
#include <cstdio>
int main() { std::puts("ficoco"); return 0; }
