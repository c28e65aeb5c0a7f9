#include "serve/upload.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "serve/http_error.hpp"

namespace stam::serve {

namespace {

constexpr size_t kMaxFieldBytes = 4096;

// Why a reader stopped: the limit (ours, or httplib's own check of Content-Length), the disk, or
// a body that ended early or did not parse.
[[noreturn]] void fail_read(const httplib::Response& res, bool over, bool disk_full,
                            size_t max_bytes, const std::string& what) {
  if (over || res.status == 413) throw too_large(max_bytes);
  if (disk_full) throw HttpError(507, "no_space", "the upload could not be stored on the server");
  throw HttpError(400, "bad_body", what);
}

// Counts a body's bytes against its limit: past it, the rest is drained (kLingerBytes at most).
class Budget {
 public:
  explicit Budget(size_t max_bytes) : max_(max_bytes) {}
  // Takes `n` more bytes: true while they are within the limit; past it false, and `keep_reading`
  // says whether to go on draining.
  bool take(size_t n, bool& keep_reading) {
    used_ += n;
    keep_reading = used_ <= max_ + kLingerBytes;
    return used_ <= max_;
  }
  bool over() const { return used_ > max_; }

 private:
  size_t max_, used_ = 0;
};

}  // namespace

HttpError too_large(size_t max_bytes) {
  return HttpError(413, "too_large",
                   "the body is over the server's limit of " + std::to_string(max_bytes) +
                       " bytes (--max-upload-mb)");
}

std::string default_temp_dir() {
  const char* dir = std::getenv("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

TempFile::TempFile(const std::string& dir) {
  std::string pattern = dir + "/" + kUploadPrefix + "XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0)
    throw std::runtime_error("cannot create a temp file in " + dir + ": " + std::strerror(errno));
  path_ = name.data();
}

TempFile::~TempFile() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

bool TempFile::write(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
    size_ += static_cast<size_t>(n);
  }
  return true;
}

void read_raw_body(const httplib::ContentReader& reader, const httplib::Response& res,
                   size_t max_bytes, TempFile& file) {
  Budget budget(max_bytes);
  bool disk_full = false;
  const bool ok = reader([&](const char* data, size_t size) {
    bool keep_reading = true;
    if (!budget.take(size, keep_reading)) return keep_reading;
    return !(disk_full = !file.write(data, size));
  });
  if (!ok || budget.over())
    fail_read(res, budget.over(), disk_full, max_bytes, "the body ended before its length");
}

UploadForm read_multipart_body(const httplib::ContentReader& reader, const httplib::Response& res,
                               size_t max_bytes, TempFile& file) {
  UploadForm form;
  Budget budget(max_bytes);
  bool disk_full = false, in_file = false;
  std::string* field = nullptr;
  const bool ok = reader(
      [&](const httplib::MultipartFormData& part) {
        in_file = part.name == "file" && !form.has_file;
        if (in_file) {
          form.has_file = true;
          form.filename = part.filename;
        } else {
          field = &form.fields[part.name];
        }
        return true;
      },
      [&](const char* data, size_t size) {
        bool keep_reading = true;
        if (!budget.take(size, keep_reading)) return keep_reading;
        if (in_file) return !(disk_full = !file.write(data, size));
        if (field->size() + size > kMaxFieldBytes) return false;
        field->append(data, size);
        return true;
      });
  if (!ok || budget.over())
    fail_read(res, budget.over(), disk_full, max_bytes,
              "the multipart/form-data body is malformed, cut off or has a field over " +
                  std::to_string(kMaxFieldBytes) + " bytes");
  if (!form.has_file)
    throw HttpError(400, "missing_file", "the multipart/form-data body has no field 'file'");
  return form;
}

std::string read_small_body(const httplib::ContentReader& reader, const httplib::Response& res,
                            size_t max_bytes) {
  std::string body;
  bool over = false;
  const bool ok = reader([&](const char* data, size_t size) {
    if (body.size() + size > max_bytes) return !(over = true);
    body.append(data, size);
    return true;
  });
  if (!ok || over) fail_read(res, over, false, max_bytes, "the body ended before its length");
  return body;
}

}  // namespace stam::serve
