#pragma once
// Errors that reach the user, each with the process exit code it maps to.
#include <stdexcept>
#include <string>

namespace stam {

// Exit codes of the `stam` command; README.md and `stam --help` list them.
enum class Exit : int {
  kOk = 0,
  kInternal = 1,      // a bug or an unexpected library failure
  kUsage = 2,         // bad command line
  kInput = 3,         // input video/folder missing, unreadable or undecodable
  kModel = 4,         // weights or labels missing, corrupt or inconsistent
  kDevice = 5,        // requested device or precision not available
  kPartial = 6,       // batch: some inputs failed, the others were labelled
  kInterrupted = 130  // stopped by SIGINT/SIGTERM
};

class Error : public std::runtime_error {
 public:
  Error(Exit code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Exit code() const { return code_; }

 private:
  Exit code_;
};

// Shorthands for the common kinds.
struct InputError : Error {
  explicit InputError(const std::string& m) : Error(Exit::kInput, m) {}
};
struct ModelError : Error {
  explicit ModelError(const std::string& m) : Error(Exit::kModel, m) {}
};
struct DeviceError : Error {
  explicit DeviceError(const std::string& m) : Error(Exit::kDevice, m) {}
};
struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(Exit::kUsage, m) {}
};

}  // namespace stam
