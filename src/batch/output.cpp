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
#include <functional>
#include <sstream>

#include "batch/batch.hpp"
#include "batch/files.hpp"
#include "stam/error.hpp"

namespace fs = std::filesystem;

namespace stam::batch {

namespace {

// Called for every whole record of an output file, in file order; `text` includes its line
// break. Visiting streams JSONL line by line, so a resume over millions of records does not hold
// the file in memory (CSV, whose rows can span lines, is read whole).
using Visitor = std::function<void(const std::string& key, bool ok, std::string_view text)>;

struct Visited {
  size_t valid_bytes = 0;       // header and whole records; the rest is a torn tail
  std::string header;           // CSV header row ("" when none is complete)
  bool warnings_column = true;  // CSV: the header has a `warnings` column
};

Error output_error(const std::string& path, const std::string& what) {
  return Error(Exit::kUsage, "output " + path + ": " + what);
}

// A tail we may cut: what a kill mid-write or a crash leaves (a record's beginning, zeros, or
// blanks), never unrelated text that would mean the file is not ours.
bool plausible_tail(std::string_view tail, std::string_view record_start) {
  if (tail.find_first_not_of(std::string_view("\0 \t\r\n", 5)) == std::string_view::npos)
    return true;
  const size_t n = std::min(tail.size(), record_start.size());
  return tail.substr(0, n) == record_start.substr(0, n);
}

Visited visit_jsonl(const std::string& path, const Visitor& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw output_error(path, "cannot read it back: " + std::string(std::strerror(errno)));
  Visited v;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    if (in.eof()) {  // no line break after it: a torn tail
      if (!plausible_tail(line, "{"))
        throw output_error(path, "ends with text that is not a stam batch record");
      break;
    }
    ++line_no;
    v.valid_bytes += line.size() + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("input") || !j["input"].is_string())
      throw output_error(path, "line " + std::to_string(line_no) +
                                   " is not a stam batch JSONL record; refusing to modify "
                                   "the file (use another --output, or --overwrite)");
    line += '\n';
    visit(stored_record_key(j["input"].get<std::string>()), !j.contains("error"), line);
  }
  return v;
}

Visited visit_csv(const std::string& path, int64_t top_k, const Visitor& visit) {
  const std::string data = read_all(path);
  CsvRows rows;
  try {
    rows = parse_csv(data);
  } catch (const Error& e) {
    throw output_error(path, std::string(e.what()) + "; refusing to modify the file");
  }
  Visited v;
  v.valid_bytes = rows.complete_bytes;
  if (rows.rows.empty()) {
    if (!plausible_tail(data, csv_header(top_k)))
      throw output_error(path, "is not a stam batch CSV file (no header row)");
    return v;
  }
  const auto& head = rows.rows.front();
  if (head.empty() || head.front() != "input" || head.back() != "error")
    throw output_error(path, "is not a stam batch CSV file (unexpected header row)");
  v.header = data.substr(0, rows.row_end.front());
  // Outputs of stam before the `warnings` column have none: their layout is kept.
  v.warnings_column = head.size() >= 3 && head[head.size() - 2] == "warnings";
  if (rows.rows.size() == 1) return v;  // no records yet: any --top-k may start the file
  const size_t extra = v.warnings_column ? 3 : 2;
  const size_t width = static_cast<size_t>(2 * top_k) + extra;
  if (head.size() != width)
    throw output_error(path, "was written with --top-k " +
                                 std::to_string((head.size() - extra) / 2) +
                                 "; resume with the same --top-k");
  for (size_t i = 1; i < rows.rows.size(); ++i) {
    const auto& r = rows.rows[i];
    if (r.size() == 1 && r[0].empty()) continue;  // blank line
    if (r.size() != width)
      throw output_error(path, "row " + std::to_string(i + 1) + " has " + std::to_string(r.size()) +
                                   " fields, expected " + std::to_string(width));
    const size_t begin = rows.row_end[i - 1];
    visit(stored_record_key(r.front()), r.back().empty(),
          std::string_view(data).substr(begin, rows.row_end[i] - begin));
  }
  return v;
}

Visited visit_output(const std::string& path, Format f, int64_t top_k, const Visitor& visit) {
  return f == Format::kJsonl ? visit_jsonl(path, visit) : visit_csv(path, top_k, visit);
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

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw output_error(path, "cannot read it back: " + std::string(std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Replacement::Replacement(const std::string& target)
    : target_(target),
      tmp_(target_.parent_path() /
           ("." + target_.filename().string() + ".stam-tmp-" + std::to_string(::getpid()))),
      fd_(::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
  if (fd_ < 0)
    throw output_error(target, "cannot create " + tmp_.string() + ": " + std::strerror(errno));
  // The new version keeps the old one's permissions: a private (0600) output stays private.
  struct stat old;
  if (::stat(target.c_str(), &old) == 0) ::fchmod(fd_, old.st_mode & 07777);
}

Replacement::~Replacement() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void Replacement::write(const std::string& bytes) {
  write_fully(fd_, bytes, tmp_.string());
}

void Replacement::commit() {
  if (::fsync(fd_) != 0)
    throw output_error(target_.string(), std::string("fsync: ") + std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), target_.c_str()) != 0)
    throw output_error(target_.string(), std::string("cannot replace it: ") + std::strerror(errno));
  committed_ = true;
  fsync_dir(target_.parent_path());
}

ExistingOutput scan_output(const std::string& path, Format format, int64_t top_k) {
  ExistingOutput out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  out.exists = true;
  out.file_bytes = fs::file_size(path, ec);
  Visited v = visit_output(path, format, top_k, [&](const std::string& key, bool ok, auto) {
    ++out.records;
    if (!ok) ++out.error_records;
    bool& has_result = out.done[key];  // inserted as false
    has_result = has_result || ok;
  });
  out.valid_bytes = v.valid_bytes;
  out.has_header = !v.header.empty();
  out.warnings_column = v.warnings_column;
  return out;
}

int64_t rewrite_without_errors(const std::string& path, Format format, int64_t top_k,
                               const std::unordered_set<std::string>& redo) {
  Replacement file(path);
  int64_t dropped = 0;
  const bool csv = format == Format::kCsv;
  // JSONL is written on in ~1 MB pieces; CSV (read whole anyway) is held until its header is
  // known: the file's own, so an older file keeps its columns.
  std::string buffer;
  const Visited v =
      visit_output(path, format, top_k, [&](const std::string& key, bool ok, auto text) {
        if (!ok && redo.count(key) > 0) {
          ++dropped;
          return;
        }
        buffer.append(text);
        if (!csv && buffer.size() > (1u << 20)) {
          file.write(buffer);
          buffer.clear();
        }
      });
  if (csv) file.write(v.header.empty() ? csv_header(top_k) : v.header);
  file.write(buffer);
  file.commit();
  return dropped;
}

OutputFile::OutputFile(const std::string& path) : path_(path), fd_(open_locked(path)) {}

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
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw output_error(path_, std::string("cannot read its size: ") + std::strerror(errno));
  try {
    write_fully(fd_, bytes, path_);
  } catch (const Error& e) {
    // A write stopped part way (a full disk) would leave a torn record for --resume to cut:
    // cut it now, so the file holds whole records whatever happens next.
    const bool cut = ::ftruncate(fd_, st.st_size) == 0;
    throw Error(e.code(), std::string(e.what()) +
                              (cut ? "; the file ends with its last whole record"
                                   : "; its last record may be incomplete (--resume cuts it)"));
  }
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
