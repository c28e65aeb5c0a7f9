// Which inputs a batch run labels, in which order, and which of them belong to one shard.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>
#include <system_error>

#include "batch/batch.hpp"
#include "output.hpp"
#include "stam/error.hpp"

namespace fs = std::filesystem;

namespace stam::batch {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Dot-files are skipped in walks: macOS "._clip.mp4" resource forks carry video extensions but
// are not videos, and our own temporary files start with a dot.
bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// One directory entry met in a walk: a video, an ignored file, or a directory.
void visit(const fs::directory_entry& entry, const InputSpec& spec, InputSet& out) {
  std::error_code ec;
  if (hidden(entry.path())) {
    if (!entry.is_directory(ec)) ++out.ignored;
    return;
  }
  if (entry.is_directory(ec)) return;  // the walker decides whether to descend
  // Taken on its name alone: a dangling or looping link or a FIFO named like a video then gets
  // an error record (check_input) instead of vanishing among the ignored files.
  if (has_extension(entry.path().string(), spec.extensions))
    out.inputs.push_back(entry.path().string());
  else
    ++out.ignored;
}

// A walked folder that could not be read (or not to its end) is an input of its own, with why:
// it gets an error record instead of vanishing with the videos in it.
void unreadable(const fs::path& dir, const std::error_code& ec, bool part_way, InputSet& out) {
  out.inputs.push_back(dir.string());
  out.unreadable[dir.string()] =
      (part_way ? "cannot read folder to its end: " : "cannot read folder: ") + ec.message() +
      "; the videos in it were not searched";
}

// Lists `dir`, and with spec.recursive its subdirectories, one at a time so that each that
// cannot be read is known. Symlinked directories are not followed (a link to an ancestor would
// loop forever); dot directories are not entered. `top`: a directory INPUT, which must be
// readable (a UsageError, like a missing one).
void walk(const fs::path& dir, const InputSpec& spec, bool top, InputSet& out) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec && top) throw UsageError("cannot read directory " + dir.string() + ": " + ec.message());
  if (ec) return unreadable(dir, ec, false, out);
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code dir_ec;
    if (it->is_directory(dir_ec) && !hidden(it->path())) {
      if (!spec.recursive)
        ++out.unsearched_dirs;
      else if (!it->is_symlink(dir_ec))
        walk(it->path(), spec, false, out);
    }
    visit(*it, spec, out);
  }
  if (ec) unreadable(dir, ec, true, out);
}

// A list is text: a NUL byte means a video or other binary file was given by mistake (e.g.
// `--list list.txt clip.avi` in older versions), and its bytes must not become inputs. Bytes
// that are not UTF-8 are allowed: a file name is bytes, and `find > list` writes them as such.
void check_text(std::string_view data, const std::string& name) {
  const size_t nul = data.find('\0');
  if (nul != std::string_view::npos)
    throw UsageError("--list " + name + " is not a text file (NUL byte at offset " +
                     std::to_string(nul) + "); give a file with one path a line");
}

void add_list(const std::string& name, std::istream& list_stdin, InputSet& out) {
  std::ostringstream data;
  if (name == "-") {
    data << list_stdin.rdbuf();
  } else {
    std::error_code ec;
    if (fs::is_directory(name, ec))
      throw UsageError("--list " + name +
                       " is a directory; --list takes a text file of paths (give a directory "
                       "as an INPUT to walk it)");
    std::ifstream in(name, std::ios::binary);
    if (!in) throw UsageError("cannot read --list file " + name);
    data << in.rdbuf();
  }
  std::string text = data.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a byte-order mark (Windows editors)
  check_text(text, name == "-" ? "(stdin)" : name);
  std::istringstream in(text);
  std::vector<std::string> paths = read_list(in);
  out.inputs.insert(out.inputs.end(), paths.begin(), paths.end());
}

bool parse_count(const std::string& s, int64_t& value) {
  if (s.empty() || s.size() > 12) return false;
  if (!std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return false;
  value = std::stoll(s);
  return true;
}

}  // namespace

std::vector<std::string> parse_extensions(const std::string& csv) {
  std::vector<std::string> exts;
  size_t start = 0;
  while (start <= csv.size()) {
    size_t comma = csv.find(',', start);
    if (comma == std::string::npos) comma = csv.size();
    const std::string given = trim(csv.substr(start, comma - start));
    std::string e = ascii_lower(given);
    if (!e.empty() && e[0] == '.') e.erase(0, 1);
    // A file's last extension is letters and digits (m2ts, 3gp): a pattern (*.mp4) or a name
    // would match nothing, and the run would end without a word.
    if (!std::all_of(e.begin(), e.end(), [](unsigned char c) { return std::isalnum(c); })) {
      const size_t dot = e.rfind('.');
      const std::string hint =
          dot == std::string::npos ? "" : " (did you mean " + e.substr(dot + 1) + "?)";
      throw UsageError(
          "--ext takes extensions such as mp4,avi (letters and digits, without '*' "
          "or '.'), not '" +
          given + "'" + hint);
    }
    if (!e.empty()) exts.push_back(e);
    start = comma + 1;
  }
  if (exts.empty())
    throw UsageError("--ext needs at least one extension, e.g. --ext mp4,avi, not '" + csv + "'");
  return exts;
}

std::vector<std::string> read_list(std::istream& in) {
  std::vector<std::string> paths;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Only wholly blank lines are skipped: leading/trailing spaces can be part of a file name.
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    paths.push_back(line);
  }
  return paths;
}

InputSet collect_inputs(const InputSpec& spec, std::istream& list_stdin) {
  InputSet out;
  for (const auto& p : spec.paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (!fs::exists(st)) throw UsageError("input not found: " + p);
    if (!fs::is_directory(st))
      out.inputs.push_back(p);  // named explicitly: taken whatever its extension
    else
      walk(p, spec, true, out);
  }
  for (const auto& l : spec.lists) add_list(l, list_stdin, out);
  // One spelling per file (./ds/a.mp4 and ds//a.mp4 are ds/a.mp4, ds/frames/ is ds/frames), so
  // that naming a folder twice does not label it twice.
  for (auto& p : out.inputs) p = normal_path(p);
  std::map<std::string, std::string> unreadable;
  for (auto& [dir, why] : out.unreadable) unreadable[normal_path(dir)] = std::move(why);
  out.unreadable = std::move(unreadable);
  // Byte-wise order, independent of locale and of the file system's listing order, so every
  // run and every shard sees the same list.
  std::sort(out.inputs.begin(), out.inputs.end());
  out.inputs.erase(std::unique(out.inputs.begin(), out.inputs.end()), out.inputs.end());
  return out;
}

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  Shard s;
  if (slash == std::string::npos || !parse_count(text.substr(0, slash), s.index) ||
      !parse_count(text.substr(slash + 1), s.count)) {
    std::string hint = text.find('$') != std::string::npos
                           ? " (the shell did not expand the variable: is it set?)"
                       : text.empty() ? " (is the variable that should give it set?)"
                                      : "";
    throw UsageError("--shard wants K/N with whole numbers, got '" + text + "'" + hint);
  }
  if (s.count < 1 || s.index >= s.count)
    throw UsageError("--shard " + text + ": need 0 <= K < N (K counts from 0)");
  return s;
}

std::vector<std::string> select_shard(const std::vector<std::string>& sorted, Shard shard) {
  std::vector<std::string> part;
  for (size_t i = static_cast<size_t>(shard.index); i < sorted.size();
       i += static_cast<size_t>(shard.count))
    part.push_back(sorted[i]);
  return part;
}

}  // namespace stam::batch
