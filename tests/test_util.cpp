#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>

#include "stam/stam.hpp"

namespace fs = std::filesystem;

namespace stam::test {

std::string source_path(const std::string& rel) {
  return std::string(STAM_SOURCE_DIR) + "/" + rel;
}
std::string video_path(const std::string& name) {
  return source_path("tests/data/videos/" + name);
}
std::string fixture_path(const std::string& name) {
  return source_path("tests/fixtures/" + name);
}
ModelOptions tiny_model_options() {
  ModelOptions o;
  o.weights = fixture_path("tiny_stam.pth");
  o.labels = source_path("models/kinetics400_labels.txt");
  o.device = "cpu";
  return o;
}
std::string stam_binary() {
  return STAM_BINARY;
}
std::string stam_cmd(const std::string& args) {
  return shell_quote(stam_binary()) + " " + args;
}

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path p = fs::temp_directory_path() /
                 ("stam_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    if (fs::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return diff / scale;
}

std::vector<double> as_doubles(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

CommandResult run_command(const std::string& command) {
  TempDir tmp;
  const std::string out = tmp.file("stdout"), err = tmp.file("stderr");
  const std::string full =
      "(" + command + ") </dev/null >" + shell_quote(out) + " 2>" + shell_quote(err);
  int status = std::system(full.c_str());
  CommandResult r;
  if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (status != -1 && WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

int64_t resident_bytes_of_mapping(const std::string& path) {
  std::istringstream smaps(read_file("/proc/self/smaps"));
  int64_t kb = 0;
  bool ours = false;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's header ("start-end perms offset dev inode path") is followed by its fields.
    const std::string first = line.substr(0, line.find(' '));
    const bool header = first.find('-') != std::string::npos &&
                        first.find_first_not_of("0123456789abcdef-") == std::string::npos;
    if (header)
      ours = line.size() > path.size() &&
             line.compare(line.size() - path.size() - 1, std::string::npos, " " + path) == 0;
    else if (ours && line.rfind("Rss:", 0) == 0)
      kb += std::stoll(line.substr(4));
  }
  return kb * 1024;
}

}  // namespace stam::test
