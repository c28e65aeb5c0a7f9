#include "serve/server.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "output.hpp"
#include "serve/http_error.hpp"
#include "serve/metrics.hpp"
#include "serve/upload.hpp"
#include "serve/worker.hpp"

namespace stam::serve {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// Compares without returning early at the first difference, so timing tells nothing of the key.
bool same_key(const std::string& a, const std::string& b) {
  unsigned diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= unsigned(a[i]) ^ unsigned(b[i % (b.size() + 1)]);
  return diff == 0;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); !from.empty() && at != std::string::npos;
       at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// The per-request settings: query fields, or the multipart form's.
struct Settings {
  int64_t top_k;
  Sampling sampling;
  Seek seek;
  bool logits = false;
};

}  // namespace

struct Server::Impl {
  ModelOptions model_options;
  ServeOptions options;
  httplib::Server http;
  Metrics metrics;
  std::unique_ptr<Classifier> model;
  std::unique_ptr<Worker> worker;
  std::atomic<bool> ready{false};
  mutable std::mutex mutex;
  std::exception_ptr error;
  std::thread listener, loader;
  bool stopped = false;

  void load();
  void routes();
  void classify(const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& reader);
  void check_key(const httplib::Request& req) const;
  std::string allowed_path(const std::string& path) const;
  Settings settings(const std::function<std::optional<std::string>(const char*)>& field) const;
  Result run(const std::string& file, const Settings& s);
};

void Server::Impl::load() {
  try {
    model = std::make_unique<Classifier>(model_options);
    WorkerOptions w{options.queue, options.max_batch, options.decode_workers,
                    options.before_forward};
    worker = std::make_unique<Worker>(*model, std::move(w), metrics);
    ready = true;
    spdlog::info("model loaded: T={}, {} classes, {}", model->config().frames,
                 model->labels().size(), model->device_name());
  } catch (...) {
    std::lock_guard lock(mutex);
    error = std::current_exception();
    try {
      throw;
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
    }
  }
}

void Server::Impl::check_key(const httplib::Request& req) const {
  if (options.api_key.empty()) return;
  std::string given = req.get_header_value("X-API-Key");
  const std::string auth = req.get_header_value("Authorization");
  if (given.empty() && auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
  if (given.empty() || !same_key(given, options.api_key))
    throw HttpError(401, "unauthorized",
                    "a valid API key is needed (Authorization: Bearer KEY or X-API-Key: KEY)");
}

std::string Server::Impl::allowed_path(const std::string& path) const {
  if (options.allow_dir.empty())
    throw HttpError(403, "forbidden", "this server reads no paths (start it with --allow-dir)");
  const fs::path root = fs::weakly_canonical(options.allow_dir);
  const fs::path p = fs::path(path).is_absolute() ? fs::path(path) : root / path;
  const fs::path canon = fs::weakly_canonical(p);
  auto r = root.begin(), c = canon.begin();
  for (; r != root.end() && !r->empty(); ++r, ++c)
    if (c == canon.end() || *r != *c)
      throw HttpError(403, "forbidden", path + " is outside the allowed folder");
  return canon.string();
}

Settings Server::Impl::settings(
    const std::function<std::optional<std::string>(const char*)>& field) const {
  Settings s{model_options.top_k, model_options.sampling, model_options.seek};
  auto bad = [](const std::string& m) { return HttpError(400, "bad_parameter", m); };
  try {
    if (auto v = field("top_k")) {
      size_t used = 0;
      s.top_k = std::stoll(*v, &used);
      if (used != v->size() || s.top_k < 1) throw bad("top_k must be a whole number >= 1");
    }
    if (auto v = field("sampling")) s.sampling = parse_sampling(*v);
    if (auto v = field("seek")) s.seek = parse_seek(*v);
  } catch (const UsageError& e) {
    throw bad(e.what());
  } catch (const std::logic_error&) {
    throw bad("top_k must be a whole number >= 1");
  }
  if (auto v = field("logits")) {
    if (*v != "1" && *v != "true" && *v != "0" && *v != "false")
      throw bad("logits must be 1, true, 0 or false");
    s.logits = *v == "1" || *v == "true";
  }
  if (auto v = field("frames")) {
    const std::string t = std::to_string(model->config().frames);
    if (*v != t) throw bad("frames=" + *v + ": the server runs T=" + t);
  }
  return s;
}

Result Server::Impl::run(const std::string& file, const Settings& s) {
  const Classifier& m = *model;
  Result r = worker->run([&m, &file, s, this]() {
    if (s.sampling == model_options.sampling && s.seek == model_options.seek)
      return m.prepare(file);
    ClipReader reader(m.config().frames, m.config().image_size, s.sampling, s.seek,
                      torch::Device(m.device_name()));
    return reader.read(file);
  });
  if (s.top_k != model_options.top_k) {
    torch::Tensor row = torch::tensor(r.logits).softmax(0);
    auto [values, indices] = row.topk(std::min<int64_t>(s.top_k, row.size(0)));
    r.top_k.clear();
    for (int64_t i = 0; i < values.size(0); ++i) {
      const int64_t k = indices[i].item<int64_t>();
      r.top_k.push_back({k, m.labels()[k], values[i].item<double>()});
    }
  }
  return r;
}

void Server::Impl::classify(const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& reader) {
  check_key(req);
  const std::string type = req.get_header_value("Content-Type");
  auto is = [&](const char* t) { return type.rfind(t, 0) == 0; };
  std::optional<TempFile> upload;
  std::string file, input = "upload";
  UploadForm form;
  if (is("multipart/form-data")) {
    upload.emplace(options.temp_dir.empty() ? default_temp_dir() : options.temp_dir);
    form = read_multipart_body(reader, res, options.max_upload_bytes, *upload);
    if (!form.filename.empty()) input = form.filename;
  } else if (is("application/json")) {
    Json body = Json::parse(read_small_body(reader, res, 65536), nullptr, false);
    if (!body.is_object() || !body.contains("path") || !body["path"].is_string())
      throw HttpError(400, "bad_json", "the JSON body must be an object with a string \"path\"");
    input = body["path"].get<std::string>();
    file = allowed_path(input);
  } else if (type.empty() || is("video/") || is("application/octet-stream")) {
    upload.emplace(options.temp_dir.empty() ? default_temp_dir() : options.temp_dir);
    read_raw_body(reader, res, options.max_upload_bytes, *upload);
  } else {
    throw HttpError(415, "unsupported_media_type",
                    "Content-Type " + type +
                        " is not taken: send video/*, application/octet-stream, "
                        "multipart/form-data or application/json");
  }
  if (!ready) throw HttpError(503, "loading", "the model is still loading");
  if (upload) {
    file = upload->path();
    if (upload->size() == 0) throw HttpError(400, "empty", "the uploaded video is empty");
  }
  const Settings s = settings([&](const char* key) -> std::optional<std::string> {
    if (req.has_param(key)) return req.get_param_value(key);
    if (auto f = form.fields.find(key); f != form.fields.end()) return f->second;
    return std::nullopt;
  });
  try {
    Result r = run(file, s);
    r.input = input;
    for (auto& w : r.warnings) w = replace_all(w, file, input);
    send_json(res, 200, to_json(r, s.logits));
  } catch (const InputError& e) {
    throw HttpError(400, "undecodable", replace_all(e.what(), file, input));
  }
}

void Server::Impl::routes() {
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    Json j;
    std::lock_guard lock(mutex);
    j["status"] = ready ? "ok" : error ? "error" : "loading";
    send_json(res, ready ? 200 : 503, j);
  });
  http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    check_key(req);
    res.set_content(metrics.render(ready ? worker->depth() : 0), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    check_key(req);
    if (!ready) throw HttpError(503, "loading", "the model is still loading");
    Json j;
    j["weights"] = model_options.weights;
    j["frames"] = model->config().frames;
    j["classes"] = model->labels().size();
    j["precision"] = to_string(model->precision());
    j["device"] = model->device_name();
    send_json(res, 200, j);
  });
  http.Post("/v1/classify",
            [this](const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader) { classify(req, res, reader); });
  auto wrong_method = [](const httplib::Request& req, httplib::Response& res) {
    send_error(res, HttpError(405, "method_not_allowed", req.method + " is not taken here"));
  };
  for (const char* p : {"/health", "/metrics", "/v1/models"}) {
    http.Post(p, wrong_method);
    http.Put(p, wrong_method);
    http.Delete(p, wrong_method);
  }
  http.Get("/v1/classify", wrong_method);
  http.Put("/v1/classify", wrong_method);
  http.Delete("/v1/classify", wrong_method);
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const HttpError& e) {
          send_error(res, e);
        } catch (const std::exception& e) {
          spdlog::error("serve: {}", e.what());
          send_error(res, HttpError(500, "internal", e.what()));
        }
      });
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 404)
          send_error(res, HttpError(404, "not_found", req.path + " is not an endpoint"));
        else if (res.status == 413)
          send_error(res, HttpError(413, "too_large", "the body is over the server's limit"));
        else
          send_error(res, HttpError(res.status, "bad_request", "the request was refused"));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const bool known = req.path == "/health" || req.path == "/metrics" ||
                       req.path == "/v1/models" || req.path == "/v1/classify";
    metrics.request(known ? req.path : "other", res.status, 0);
  });
}

Server::Server(ModelOptions model, ServeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->model_options = std::move(model);
  impl_->options = std::move(options);
  impl_->http.set_payload_max_length(impl_->options.max_upload_bytes + 1);
  impl_->routes();
}

Server::~Server() {
  stop();
}

int Server::start() {
  Impl& m = *impl_;
  const int port =
      m.options.port == 0
          ? m.http.bind_to_any_port(m.options.host)
          : (m.http.bind_to_port(m.options.host, m.options.port) ? m.options.port : -1);
  if (port < 0)
    throw UsageError("cannot listen on " + m.options.host + ":" + std::to_string(m.options.port));
  m.listener = std::thread([&m] { m.http.listen_after_bind(); });
  spdlog::info("listening on http://{}:{}", m.options.host, port);
  m.loader = std::thread([&m] { m.load(); });
  return port;
}

void Server::stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  if (m.loader.joinable()) m.loader.join();
  m.http.stop();  // returns from listen_after_bind once the requests in progress are answered
  if (m.listener.joinable()) m.listener.join();
  m.worker.reset();
}

std::exception_ptr Server::load_error() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->error;
}

bool Server::loaded() const {
  return impl_->ready;
}

}  // namespace stam::serve
