// Errors: library code throws ficoco::Error with a message that names the file,
// tensor or field at fault; front ends (CLI, server) catch it at their boundary.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ficoco {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds the message from streamable parts: Fail("tensor '", name, "': expected ", n).
template <class... Parts>
[[noreturn]] void Fail(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw Error(os.str());
}

}  // namespace ficoco
