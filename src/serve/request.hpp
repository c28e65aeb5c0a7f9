#pragma once
// What a request to stam serve brings: the video (an upload in a temp file of its own, or a path
// under --allow-dir), its settings (query fields, or the multipart form's), and its key.
#include <httplib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "serve/upload.hpp"

namespace stam::serve {

struct ReceiveLimits {
  size_t max_upload_bytes = 0;
  std::string temp_dir;   // where uploads go
  std::string allow_dir;  // "": JSON path requests are refused (403)
};

// A request's video.
struct Received {
  std::unique_ptr<TempFile> upload;  // the body's video, removed with this object
  std::string file;                  // what the model reads: the upload's temp file, or the path
  std::string input;                 // what the response calls it: the upload's file name, "upload"
                                     // for a raw body, or the path as the client gave it
  std::map<std::string, std::string> form;  // a multipart body's other fields
};

// Reads the body by its Content-Type: video/*, application/octet-stream or none (raw), multipart
// (field `file`), or application/json {"path": ...}. Throws HttpError: 400 for a malformed or
// empty body, 403 for a path outside `allow_dir` (symlinks resolved) or with no --allow-dir,
// 413, 415 for another type, 507.
Received receive(const httplib::Request& req, const httplib::Response& res,
                 const httplib::ContentReader& reader, const ReceiveLimits& limits);

// `path` (relative to `allow_dir`, or absolute) resolved, symlinks included, when it lies under
// `allow_dir`. Throws HttpError 403 otherwise, or when `allow_dir` is "".
std::string allowed_path(const std::string& allow_dir, const std::string& path);

// Throws HttpError 401 unless the request carries `key` (Authorization: Bearer KEY or
// X-API-Key: KEY), compared in constant time. An empty `key` asks nothing.
void check_key(const httplib::Request& req, const std::string& key);

// A request's settings: its query fields and a multipart body's form fields (the query wins),
// each one of the route's `known` names (else HttpError 400 naming it).
class Fields {
 public:
  Fields(const httplib::Request& req, const std::map<std::string, std::string>& form,
         const std::vector<std::string>& known);
  std::optional<std::string> text(const char* name) const;
  // Throw HttpError 400 naming the field and what it takes.
  std::optional<int64_t> whole(const char* name, int64_t min) const;
  std::optional<double> positive(const char* name) const;
  bool flag(const char* name) const;  // 1/true or 0/false; absent: false

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace stam::serve
