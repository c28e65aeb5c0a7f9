#include "serve/server.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "batch/decoding.hpp"
#include "embed.hpp"
#include "output.hpp"
#include "serve/http_error.hpp"
#include "serve/metrics.hpp"
#include "serve/request.hpp"
#include "serve/upload.hpp"
#include "serve/worker.hpp"
#include "timeline/timeline.hpp"

namespace stam::serve {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kRoutes[] = {"/health",      "/metrics",  "/v1/models",
                                   "/v1/classify", "/v1/embed", "/v1/timeline"};
// Threads for the requests beyond the queue's, so that /health, /metrics and the queue's own 503
// answers never wait behind the admitted ones.
constexpr size_t kSpareThreads = 4;

// When this thread's request arrived (set before routing, read by the logger once it is answered).
thread_local std::optional<Clock::time_point> request_start;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); !from.empty() && at != std::string::npos;
       at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// The body's Content-Length: 0 when it states none (chunked), the most a size_t holds when it
// states more.
size_t stated_length(const httplib::Request& req) {
  const std::string length = req.get_header_value("Content-Length");
  if (length.size() >= 19) return std::numeric_limits<size_t>::max();
  return static_cast<size_t>(std::strtoull(length.c_str(), nullptr, 10));
}

void rename_in(std::vector<std::string>& texts, const Received& in) {
  for (auto& t : texts) t = replace_all(t, in.file, in.input);
}

// The library's errors as HTTP ones: the input's are the client's (400), the rest the server's.
HttpError http_error(const Error& e, const Received& in) {
  const std::string message = replace_all(e.what(), in.file, in.input);
  switch (e.code()) {
    case Exit::kInput:
      return HttpError(400, "undecodable", message);
    case Exit::kUsage:
      return HttpError(400, "bad_parameter", message);
    default:
      return HttpError(500, "internal", message);
  }
}

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
  void errors();
  Classifier& loaded() const;
  // A stated length past what would be drained is refused before anything is read.
  void refuse_oversized(const httplib::Request& req) const;
  Received receive_video(const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& reader) const;
  // The request's clip reader: the model's, or one with its sampling and seek.
  ClipReader reader_for(const Fields& f) const;
  Json classify(const Received& in, const Fields& f);
  Json embed(const Received& in, const Fields& f);
  Json timeline(const Received& in, const Fields& f);
  // A route that reads a video: key, model, body, then `answer`, whose library errors become
  // HTTP ones.
  using Answer = Json (Impl::*)(const Received&, const Fields&);
  void video_route(const char* path, Answer answer, std::vector<std::string> fields);
};

void Server::Impl::load() {
  try {
    model = std::make_unique<Classifier>(model_options);
    const int decoders =
        options.decode_workers > 0
            ? options.decode_workers
            : batch::default_decode_workers(torch::Device(model->device_name()).is_cuda());
    WorkerOptions w{options.queue, options.max_batch, decoders, options.before_forward};
    worker = std::make_unique<Worker>(*model, std::move(w), metrics);
    ready = true;
    spdlog::info("model loaded: T={}, {} classes, {}", model->config().frames,
                 model->labels().size(), model->device_name());
  } catch (...) {
    std::lock_guard lock(mutex);
    error = std::current_exception();  // load_error(): stam serve reports it and exits
  }
}

Classifier& Server::Impl::loaded() const {
  if (!ready) throw HttpError(503, "loading", "the model is still loading");
  return *model;
}

void Server::Impl::refuse_oversized(const httplib::Request& req) const {
  if (stated_length(req) > options.max_upload_bytes + kLingerBytes)
    throw too_large(options.max_upload_bytes);
}

Received Server::Impl::receive_video(const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& reader) const {
  ReceiveLimits limits{options.max_upload_bytes,
                       options.temp_dir.empty() ? default_temp_dir() : options.temp_dir,
                       options.allow_dir};
  try {
    refuse_oversized(req);
    return receive(req, res, reader, limits);
  } catch (const HttpError&) {
    // What is left of the body is not read: the client is told the connection ends (curl then
    // stops sending), and the rest cannot be taken for a next request.
    res.set_header("Connection", "close");
    throw;
  }
}

ClipReader Server::Impl::reader_for(const Fields& f) const {
  const StamConfig& c = model->config();
  if (auto frames = f.whole("frames", 1); frames && *frames != c.frames)
    throw HttpError(400, "bad_parameter",
                    "frames=" + std::to_string(*frames) +
                        ": this server's model runs T=" + std::to_string(c.frames));
  const auto sampling = f.text("sampling");
  const auto seek = f.text("seek");
  return ClipReader(
      c.frames, c.image_size, sampling ? parse_sampling(*sampling) : model_options.sampling,
      seek ? parse_seek(*seek) : model_options.seek, torch::Device(model->device_name()));
}

Json Server::Impl::classify(const Received& in, const Fields& f) {
  const auto k = f.whole("top_k", 1);
  const ClipReader reader = reader_for(f);
  Result r = worker->run([reader, file = in.file] { return reader.read(file); });
  if (k) r.top_k = model->top_k(torch::tensor(r.logits), *k);
  r.input = in.input;
  rename_in(r.warnings, in);
  return to_json(r, f.flag("logits"));
}

Json Server::Impl::embed(const Received& in, const Fields& f) {
  const bool per_frame = f.flag("per_frame");
  const ClipReader reader = reader_for(f);
  Embedding e;
  worker->run_exclusive(
      [&] { e = stam::embed(*model, reader.read(in.file), in.input, per_frame); });
  rename_in(e.warnings, in);
  return embedding_json(e, embedding_shape(model->config(), per_frame));
}

Json Server::Impl::timeline(const Received& in, const Fields& f) {
  const auto k = f.whole("top_k", 1);
  WindowRequest w{f.positive("window_seconds"), std::nullopt, f.positive("stride_seconds"),
                  f.positive("fps")};
  const WindowPlan plan = resolve_window(w, model->config().frames);
  if (plan.frames != model->config().frames)
    throw HttpError(
        400, "bad_parameter",
        "window_seconds x fps = " + std::to_string(plan.frames) +
            " frames: this server's model runs T=" + std::to_string(model->config().frames));
  Timeline t;
  worker->run_exclusive([&] { t = run_timeline(*model, in.file, plan); });
  if (k)
    for (auto& window : t.windows) window.top_k = model->top_k(torch::tensor(window.logits), *k);
  t.input = in.input;
  rename_in(t.warnings, in);
  return timeline_json(t, f.flag("logits"));
}

void Server::Impl::video_route(const char* path, Answer answer, std::vector<std::string> fields) {
  http.Post(path, [this, answer, fields](const httplib::Request& req, httplib::Response& res,
                                         const httplib::ContentReader& reader) {
    check_key(req, options.api_key);
    loaded();
    const Received in = receive_video(req, res, reader);
    const Fields f(req, in.form, fields);
    try {
      send_json(res, 200, (this->*answer)(in, f));
    } catch (const Error& e) {
      throw http_error(e, in);
    }
  });
}

void Server::Impl::routes() {
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    Json j;
    std::lock_guard lock(mutex);
    j["status"] = ready ? "ok" : error ? "error" : "loading";
    send_json(res, ready ? 200 : 503, j);
  });
  http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    check_key(req, options.api_key);
    res.set_content(metrics.render(ready ? worker->depth() : 0), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    check_key(req, options.api_key);
    const Classifier& m = loaded();
    Json j;
    j["weights"] = model_options.weights;
    j["frames"] = m.config().frames;
    j["classes"] = m.labels().size();
    j["top_k"] = model_options.top_k;
    j["precision"] = to_string(m.precision());
    j["device"] = m.device_name();
    send_json(res, 200, j);
  });
  video_route("/v1/classify", &Impl::classify, {"top_k", "frames", "sampling", "seek", "logits"});
  video_route("/v1/embed", &Impl::embed, {"frames", "sampling", "seek", "per_frame"});
  video_route("/v1/timeline", &Impl::timeline,
              {"top_k", "window_seconds", "stride_seconds", "fps", "logits"});
  auto wrong_method = [](const httplib::Request& req, httplib::Response& res) {
    send_error(res,
               HttpError(405, "method_not_allowed", req.method + " is not taken at " + req.path));
  };
  for (const char* p : kRoutes) {
    const bool post = std::string(p).rfind("/v1/", 0) == 0 && std::string(p) != "/v1/models";
    if (post) http.Get(p, wrong_method);
    if (!post) http.Post(p, wrong_method);
    http.Put(p, wrong_method);
    http.Delete(p, wrong_method);
    http.Patch(p, wrong_method);
  }
}

void Server::Impl::errors() {
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
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 404)
          send_error(res, HttpError(404, "not_found", req.path + " is not an endpoint"));
        else if (res.status == 413)
          send_error(res, too_large(options.max_upload_bytes));
        else
          send_error(res, HttpError(res.status, "bad_request", "the request was refused"));
        return httplib::Server::HandlerResponse::Handled;
      }));
  // A client that asks first (Expect: 100-continue) learns of a body over the limit before
  // sending it.
  http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (stated_length(req) <= options.max_upload_bytes) return 100;
    res.set_header("Connection", "close");  // the body is not coming: curl stops sending
    send_error(res, too_large(options.max_upload_bytes));
    // httplib writes this answer without its length; without one a client cannot tell where
    // it ends.
    res.set_header("Content-Length", std::to_string(res.body.size()));
    return 413;
  });
  http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = Clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    std::string route = "other";
    for (const char* p : kRoutes)
      if (req.path == p) route = p;
    std::optional<double> seconds;
    if (request_start)
      seconds = std::chrono::duration<double>(Clock::now() - *request_start).count();
    request_start.reset();
    metrics.request(route, res.status, seconds);
  });
}

Server::Server(ModelOptions model, ServeOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.model_options = std::move(model);
  m.options = std::move(options);
  // A body past the limit by more than what is drained is refused before it is read.
  m.http.set_payload_max_length(m.options.max_upload_bytes + kLingerBytes);
  const size_t threads = m.options.queue + kSpareThreads;
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  m.routes();
  m.errors();
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

}  // namespace stam::serve
