#include "serve/request.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "serve/http_error.hpp"

namespace stam::serve {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxJsonBytes = 65536;

// Compares without returning early at the first difference, so timing tells nothing of the key.
bool same_key(const std::string& given, const std::string& key) {
  unsigned diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= unsigned(given[i]) ^ unsigned(key[i % (key.size() + 1)]);
  return diff == 0;
}

HttpError bad_field(const std::string& name, const std::string& what) {
  return HttpError(400, "bad_parameter", name + " " + what);
}

}  // namespace

std::string allowed_path(const std::string& allow_dir, const std::string& path) {
  if (allow_dir.empty())
    throw HttpError(403, "forbidden", "this server reads no paths (start it with --allow-dir)");
  const fs::path root = fs::weakly_canonical(allow_dir);
  const fs::path p = fs::path(path).is_absolute() ? fs::path(path) : root / path;
  const fs::path canon = fs::weakly_canonical(p);
  auto r = root.begin(), c = canon.begin();
  for (; r != root.end() && !r->empty(); ++r, ++c)
    if (c == canon.end() || *r != *c)
      throw HttpError(403, "forbidden", path + " is outside the allowed folder");
  return canon.string();
}

void check_key(const httplib::Request& req, const std::string& key) {
  if (key.empty()) return;
  std::string given = req.get_header_value("X-API-Key");
  const std::string auth = req.get_header_value("Authorization");
  if (given.empty() && auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
  if (given.empty() || !same_key(given, key))
    throw HttpError(401, "unauthorized",
                    "a valid API key is needed (Authorization: Bearer KEY or X-API-Key: KEY)");
}

Received receive(const httplib::Request& req, const httplib::Response& res,
                 const httplib::ContentReader& reader, const ReceiveLimits& limits) {
  const std::string type = req.get_header_value("Content-Type");
  auto is = [&](const char* t) { return type.rfind(t, 0) == 0; };
  Received in;
  in.input = "upload";
  if (is("multipart/form-data")) {
    in.upload = std::make_unique<TempFile>(limits.temp_dir);
    UploadForm form = read_multipart_body(reader, res, limits.max_upload_bytes, *in.upload);
    if (!form.filename.empty()) in.input = form.filename;
    in.form = std::move(form.fields);
  } else if (is("application/json")) {
    const auto body =
        nlohmann::json::parse(read_small_body(reader, res, kMaxJsonBytes), nullptr, false);
    if (!body.is_object() || !body.contains("path") || !body["path"].is_string())
      throw HttpError(400, "bad_json", "the JSON body must be an object with a string \"path\"");
    in.input = body["path"].get<std::string>();
    in.file = allowed_path(limits.allow_dir, in.input);
    return in;
  } else if (type.empty() || is("video/") || is("application/octet-stream")) {
    in.upload = std::make_unique<TempFile>(limits.temp_dir);
    read_raw_body(reader, res, limits.max_upload_bytes, *in.upload);
  } else {
    throw HttpError(415, "unsupported_media_type",
                    "Content-Type " + type +
                        " is not taken: send video/*, application/octet-stream, "
                        "multipart/form-data or application/json");
  }
  if (in.upload->size() == 0) throw HttpError(400, "empty", "the uploaded video is empty");
  in.file = in.upload->path();
  return in;
}

Fields::Fields(const httplib::Request& req, const std::map<std::string, std::string>& form,
               const std::vector<std::string>& known) {
  auto take = [&](const std::string& name, const std::string& value) {
    for (const auto& k : known)
      if (name == k) {
        values_[name] = value;
        return;
      }
    std::string names;
    for (const auto& k : known) names += std::string(names.empty() ? "" : ", ") + k;
    throw bad_field(name, "is not a setting of " + req.path + " (it takes " + names + ")");
  };
  for (const auto& [name, value] : form) take(name, value);
  for (const auto& [name, value] : req.params) take(name, value);
}

std::optional<std::string> Fields::text(const char* name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> Fields::whole(const char* name, int64_t min) const {
  auto v = text(name);
  if (!v) return std::nullopt;
  try {
    size_t used = 0;
    const int64_t n = std::stoll(*v, &used);
    if (used == v->size() && n >= min) return n;
  } catch (const std::logic_error&) {
  }
  throw bad_field(name, "must be a whole number >= " + std::to_string(min) + ", not '" + *v + "'");
}

std::optional<double> Fields::positive(const char* name) const {
  auto v = text(name);
  if (!v) return std::nullopt;
  try {
    size_t used = 0;
    const double x = std::stod(*v, &used);
    if (used == v->size() && std::isfinite(x) && x > 0) return x;
  } catch (const std::logic_error&) {
  }
  throw bad_field(name, "must be a number > 0, not '" + *v + "'");
}

bool Fields::flag(const char* name) const {
  auto v = text(name);
  if (!v || *v == "0" || *v == "false") return false;
  if (*v == "1" || *v == "true") return true;
  throw bad_field(name, "must be 1, true, 0 or false, not '" + *v + "'");
}

}  // namespace stam::serve
