#pragma once
// Request bodies on disk: each upload streams into a temp file of its own, never into memory.
#include <httplib.h>

#include <cstddef>
#include <map>
#include <string>

namespace stam::serve {

// The name every upload's temp file starts with, so that a stray one is recognisable.
inline constexpr const char* kUploadPrefix = "stam-upload-";

// A body over the limit is still read, and thrown away, for this many bytes more, so that a client
// still sending it gets its 413 instead of a reset connection; past that the connection closes.
// (Clients that send `Expect: 100-continue`, as curl does, get the 413 before sending.)
inline constexpr size_t kLingerBytes = size_t{16} << 20;

class HttpError;
// The 413 for a body over `max_bytes`.
HttpError too_large(size_t max_bytes);

// $TMPDIR, or /tmp when it is unset or empty.
std::string default_temp_dir();

// A new file `dir`/stam-upload-XXXXXX (mkstemp), removed when the object dies, whatever ends the
// request. Throws std::runtime_error when it cannot be created.
class TempFile {
 public:
  explicit TempFile(const std::string& dir);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  // Appends; false when the write failed (a full disk).
  bool write(const char* data, size_t size);
  const std::string& path() const { return path_; }
  size_t size() const { return size_; }

 private:
  std::string path_;
  int fd_ = -1;
  size_t size_ = 0;
};

// What an upload's body held besides the video: the form's other fields (multipart) and the
// file's name as the client gave it.
struct UploadForm {
  std::map<std::string, std::string> fields;
  bool has_file = false;
  std::string filename;
};

// Streams a raw body into `file`, stopping once it passes `max_bytes` (and draining up to
// kLingerBytes more). Throws HttpError: 413 over the limit, 400 when the body ended early, 507 when
// the disk refused it.
void read_raw_body(const httplib::ContentReader& reader, const httplib::Response& res,
                   size_t max_bytes, TempFile& file);
// Streams a multipart/form-data body: the field `file` into `file`, the other fields (a few KiB
// each at most) into the returned form. Throws HttpError as read_raw_body does, and 400 for a
// malformed body or one without a `file` field.
UploadForm read_multipart_body(const httplib::ContentReader& reader, const httplib::Response& res,
                               size_t max_bytes, TempFile& file);
// A small body (a JSON request) in memory, up to `max_bytes`. Throws HttpError 413 / 400.
std::string read_small_body(const httplib::ContentReader& reader, const httplib::Response& res,
                            size_t max_bytes);

}  // namespace stam::serve
