// The batch output file on disk: reading it back for --resume, the atomic rewrite for
// --retry-errors, and whole-record appends.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stam/batch.hpp"
#include "stam/error.hpp"

namespace fs = std::filesystem;

namespace stam::batch {

namespace {

struct Span {
  std::string key;
  bool ok;
  size_t begin, end;
};

// Every whole record of a file, plus where the header and the valid data end.
struct Parsed {
  std::vector<Span> records;
  size_t header_end = 0;
  size_t valid_bytes = 0;
};

Error output_error(const std::string& path, const std::string& what) {
  return Error(Exit::kUsage, "output " + path + ": " + what);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw output_error(path, "cannot read it back: " + std::string(std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A tail we may cut: what a kill mid-write or a crash leaves (a record's beginning, zeros, or
// blanks), never unrelated text that would mean the file is not ours.
bool plausible_tail(std::string_view tail, std::string_view record_start) {
  if (tail.find_first_not_of(std::string_view("\0 \t\r\n", 5)) == std::string_view::npos)
    return true;
  const size_t n = std::min(tail.size(), record_start.size());
  return tail.substr(0, n) == record_start.substr(0, n);
}

Parsed parse_jsonl(const std::string& data, const std::string& path) {
  Parsed p;
  size_t pos = 0, line_no = 0;
  for (size_t nl; (nl = data.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    ++line_no;
    std::string_view line(data.data() + pos, nl - pos);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("input") || !j["input"].is_string())
      throw output_error(path, "line " + std::to_string(line_no) +
                                   " is not a stam batch JSONL record; refusing to modify "
                                   "the file (use another --output, or --overwrite)");
    p.records.push_back({j["input"].get<std::string>(), !j.contains("error"), pos, nl + 1});
  }
  if (!plausible_tail(std::string_view(data).substr(pos), "{"))
    throw output_error(path, "ends with text that is not a stam batch record");
  p.valid_bytes = pos;
  return p;
}

Parsed parse_csv_output(const std::string& data, const std::string& path, int64_t top_k) {
  CsvRows rows;
  try {
    rows = parse_csv(data);
  } catch (const Error& e) {
    throw output_error(path, std::string(e.what()) + "; refusing to modify the file");
  }
  Parsed p;
  p.valid_bytes = rows.complete_bytes;
  const std::string header = csv_header(top_k);
  if (rows.rows.empty()) {
    if (!plausible_tail(data, header))
      throw output_error(path, "is not a stam batch CSV file (no header row)");
    return p;
  }
  const size_t width = static_cast<size_t>(2 * top_k + 2);
  const auto& head = rows.rows.front();
  if (head.empty() || head.front() != "input" || head.back() != "error")
    throw output_error(path, "is not a stam batch CSV file (unexpected header row)");
  if (head.size() != width)
    throw output_error(path, "was written with --top-k " + std::to_string((head.size() - 2) / 2) +
                                 "; resume with the same --top-k");
  p.header_end = rows.row_end.front();
  for (size_t i = 1; i < rows.rows.size(); ++i) {
    const auto& r = rows.rows[i];
    if (r.size() == 1 && r[0].empty()) continue;  // blank line
    if (r.size() != width)
      throw output_error(path, "row " + std::to_string(i + 1) + " has " + std::to_string(r.size()) +
                                   " fields, expected " + std::to_string(width));
    p.records.push_back({r.front(), r.back().empty(), rows.row_end[i - 1], rows.row_end[i]});
  }
  return p;
}

Parsed parse_output(const std::string& data, const std::string& path, Format f, int64_t k) {
  return f == Format::kJsonl ? parse_jsonl(data, path) : parse_csv_output(data, path, k);
}

void write_fully(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw output_error(path, std::string("write failed: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some file systems do not allow it
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

ExistingOutput scan_output(const std::string& path, Format format, int64_t top_k) {
  ExistingOutput out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  out.exists = true;
  const std::string data = read_all(path);
  out.file_bytes = data.size();
  Parsed p = parse_output(data, path, format, top_k);
  out.valid_bytes = p.valid_bytes;
  out.has_header = format == Format::kCsv && p.header_end > 0;
  for (const auto& r : p.records) {
    ++out.records;
    if (!r.ok) ++out.error_records;
    bool& ok = out.done[r.key];  // inserted as false
    ok = ok || r.ok;
  }
  return out;
}

int64_t rewrite_without_errors(const std::string& path, Format format, int64_t top_k) {
  const std::string data = read_all(path);
  Parsed p = parse_output(data, path, format, top_k);
  std::string kept = data.substr(0, p.header_end);
  int64_t dropped = 0;
  for (const auto& r : p.records) {
    if (r.ok)
      kept.append(data, r.begin, r.end - r.begin);
    else
      ++dropped;
  }
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".stam-tmp-" +
                                               std::to_string(::getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw output_error(path, "cannot create " + tmp.string() + ": " + std::strerror(errno));
  try {
    write_fully(fd, kept, tmp.string());
    if (::fsync(fd) != 0) throw output_error(path, std::string("fsync: ") + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw output_error(path, std::string("cannot replace it: ") + std::strerror(errno));
  }
  fsync_dir(target.parent_path());
  return dropped;
}

OutputFile::OutputFile(const std::string& path) : path_(path) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);  // cluster jobs write to fresh dirs
  fd_ = open_locked(path);
}

int OutputFile::open_locked(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw output_error(path, std::string("cannot open it: ") + std::strerror(errno));
  // Two runs appending to one file would interleave and duplicate records. Some network file
  // systems do not support flock (ENOLCK/EOPNOTSUPP): then we go on without the guard.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    ::close(fd);
    throw output_error(path, "another stam batch is writing to it");
  }
  return fd;
}

void OutputFile::reopen() {
  int fd = open_locked(path_);
  ::close(fd_);
  fd_ = fd;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::append(const std::string& bytes) {
  write_fully(fd_, bytes, path_);
}

void OutputFile::truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    throw output_error(path_, std::string("cannot truncate it: ") + std::strerror(errno));
}

void OutputFile::sync() {
  if (::fdatasync(fd_) != 0 && errno != EINVAL)
    throw output_error(path_, std::string("fsync failed: ") + std::strerror(errno));
}

}  // namespace stam::batch
