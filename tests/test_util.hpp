#pragma once
// Shared helpers for the test suite: fixture paths, temp dirs, running the CLI.
#include <filesystem>
#include <string>
#include <vector>

namespace stam {
struct ModelOptions;
}

namespace stam::test {

std::string source_path(const std::string& rel);    // <repo>/rel
std::string video_path(const std::string& name);    // <repo>/tests/data/videos/name
std::string fixture_path(const std::string& name);  // <repo>/tests/fixtures/name
std::string stam_binary();
// The CLI under test with `args` (already quoted for /bin/sh), as a command line.
std::string stam_cmd(const std::string& args);
// tiny_stam.pth (T = 8, 400 classes) with models/kinetics400_labels.txt, on the CPU.
ModelOptions tiny_model_options();

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;  // the process's exit status, or 128+signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs `command` through /bin/sh with stdin from /dev/null, capturing stdout and stderr.
CommandResult run_command(const std::string& command);

// The whole file as bytes ("" when it cannot be read).
std::string read_file(const std::string& path);
// Writes `text` as the whole file, making its directory first.
void write_file(const std::string& path, const std::string& text);
// The lines of `text`, without their newlines.
std::vector<std::string> lines_of(const std::string& text);
// Whether `needle` occurs in `hay`.
bool contains(const std::string& hay, const std::string& needle);

// max |got - want| / max |want|: the parity measure the issues set (e.g. <= 1e-5).
double relative_error(const std::vector<double>& got, const std::vector<double>& want);

// The floats as doubles, for relative_error().
std::vector<double> as_doubles(const std::vector<float>& v);

// `v` in scientific notation with 4 significant digits, for RecordProperty.
std::string sci(double v);

// Quotes `s` for /bin/sh.
std::string shell_quote(const std::string& s);

// Bytes of this process's mappings of the file `path` that are resident (/proc/self/smaps).
int64_t resident_bytes_of_mapping(const std::string& path);

}  // namespace stam::test
