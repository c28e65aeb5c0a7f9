// stam serve: responses equal the commands' records (classify, embed, timeline), every error
// status with a JSON body, concurrent requests batched without mixing, hostile and cut-off
// bodies, and SIGTERM in the middle of a request. Servers bind 127.0.0.1 on a free port.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <regex>
#include <thread>

#include "serve/server.hpp"
#include "stam/stam.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using stam::serve::ServeOptions;
using stam::serve::Server;
using stam::test::read_file;
using stam::test::run_command;
using stam::test::shell_quote;
using stam::test::stam_cmd;
using stam::test::TempDir;
using stam::test::video_path;

namespace {

const std::string kArm = "arm_wrestling_340x256_28fps.mp4";
const std::string kShort = "short_32frames_30fps.mp4";

// The server's model (tiny_model_options) on the command line; embed reads no labels.
std::string tiny_flags(bool labels = true) {
  return "-w " + shell_quote(stam::test::fixture_path("tiny_stam.pth")) +
         (labels
              ? " --labels " + shell_quote(stam::test::source_path("models/kinetics400_labels.txt"))
              : "") +
         " --device cpu --precision fp32";
}

// `stam classify FILE --format json --logits` (plus `extra`), parsed.
Json classify_record(const std::string& file, const std::string& extra = "") {
  const auto r = run_command(stam_cmd("classify " + shell_quote(file) + " " + tiny_flags() +
                                      " --format json --logits -q " + extra));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Json::parse(r.out);
}

// What two runs share: everything but the input's name and the timings.
Json comparable(Json j) {
  j.erase("input");
  j.erase("timings_ms");
  return j;
}

std::vector<double> logits_of(const Json& j) {
  return j.at("logits").get<std::vector<double>>();
}

// Waits (bounded) for /health to answer 200.
bool wait_healthy(int port) {
  httplib::Client c("127.0.0.1", port);
  for (int i = 0; i < 600; ++i) {
    if (auto r = c.Get("/health"); r && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// An error response: the status, and a JSON body {"error": {"code", "message"}}.
void expect_error(const httplib::Result& r, int status, const std::string& code) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  const Json j = Json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  EXPECT_EQ(j["error"]["code"], code) << r->body;
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
}

size_t uploads_left(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("stam-upload-", 0) == 0) ++n;
  return n;
}

// Waits (bounded) until `dir` holds no upload; true when it got there.
bool uploads_gone(const std::string& dir) {
  for (int i = 0; i < 200 && uploads_left(dir) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return uploads_left(dir) == 0;
}

// A gate the model thread waits at before each forward (the before_forward hook), opened by the
// test: requests pile up behind it.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void pass() {
    std::unique_lock l(m);
    ++waiting;
    cv.notify_all();
    cv.wait(l, [&] { return open; });
  }
  void release() {
    std::lock_guard l(m);
    open = true;
    cv.notify_all();
  }
  bool wait_for_waiter() {
    std::unique_lock l(m);
    return cv.wait_for(l, std::chrono::seconds(30), [&] { return waiting > 0; });
  }
};

// One server for a test, on a free port, loaded.
struct Running {
  TempDir temp;
  std::unique_ptr<Server> server;
  int port = 0;
  explicit Running(ServeOptions o = {}) {
    o.port = 0;
    o.temp_dir = temp.path().string();
    server = std::make_unique<Server>(stam::test::tiny_model_options(), o);
    port = server->start();
    EXPECT_TRUE(wait_healthy(port));
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
};

// The suite's shared server, with --allow-dir over a folder holding a video and a symlink out.
class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    allowed_ = new TempDir();
    outside_ = new TempDir();
    fs::copy_file(video_path(kArm), allowed_->file("clip.mp4"));
    fs::copy_file(video_path(kShort), outside_->file("secret.mp4"));
    fs::create_symlink(outside_->file("secret.mp4"), allowed_->file("link.mp4"));
    ServeOptions o;
    o.allow_dir = allowed_->path().string();
    running_ = new Running(o);
  }
  static void TearDownTestSuite() {
    delete running_;
    delete allowed_;
    delete outside_;
  }
  static httplib::Client client() { return running_->client(); }
  static std::string temp_dir() { return running_->temp.path().string(); }
  static TempDir* allowed_;
  static TempDir* outside_;
  static Running* running_;
};
TempDir* Serve::allowed_ = nullptr;
TempDir* Serve::outside_ = nullptr;
Running* Serve::running_ = nullptr;

// A connection to the server on `port` that speaks raw bytes: send() only sends (true when all
// of it went); say() sends and then reads until `until` is in what came back (or 10 s pass), and
// returns that. The destructor hangs up.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  bool send(const std::string& bytes) {
    return connected_ && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                             static_cast<ssize_t>(bytes.size());
  }

  std::string say(const std::string& bytes, const std::string& until = "}\n") {
    if (!send(bytes)) return "";
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) {
      answer.append(buf, static_cast<size_t>(n));
      if (answer.find(until) != std::string::npos) break;
    }
    return answer;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// Sends `bytes` on a connection of its own and returns the answer, up to the end of its JSON.
std::string send_raw(int port, const std::string& bytes) {
  return RawConnection(port).say(bytes);
}

}  // namespace

TEST_F(Serve, RawMultipartAndPathEqualClassifysRecord) {
  const std::string video = read_file(video_path(kArm));
  const Json want = classify_record(video_path(kArm));
  auto c = client();

  auto raw = c.Post("/v1/classify?logits=1", video, "video/mp4");
  ASSERT_TRUE(raw && raw->status == 200) << (raw ? raw->body : "no response");
  const Json got_raw = Json::parse(raw->body);
  EXPECT_EQ(comparable(got_raw), comparable(want));  // the logits bit for bit
  EXPECT_EQ(got_raw["input"], "upload");

  const httplib::MultipartFormDataItems form = {{"file", video, "arm.mp4", "video/mp4"},
                                                {"logits", "true", "", ""}};
  auto multi = c.Post("/v1/classify", form);
  ASSERT_TRUE(multi && multi->status == 200) << (multi ? multi->body : "no response");
  EXPECT_EQ(comparable(Json::parse(multi->body)), comparable(want));
  EXPECT_EQ(Json::parse(multi->body)["input"], "arm.mp4");

  auto path = c.Post("/v1/classify?logits=1", R"({"path": "clip.mp4"})", "application/json");
  ASSERT_TRUE(path && path->status == 200) << (path ? path->body : "no response");
  EXPECT_EQ(comparable(Json::parse(path->body)), comparable(want));
  EXPECT_EQ(Json::parse(path->body)["input"], "clip.mp4");
  EXPECT_TRUE(uploads_gone(temp_dir()));
}

TEST_F(Serve, SettingsAsQueryOrFormFields) {
  const std::string video = read_file(video_path(kArm));
  const Json want = classify_record(video_path(kArm), "-k 3 --sampling reference --seek keyframe");
  auto c = client();
  auto q = c.Post("/v1/classify?top_k=3&sampling=reference&seek=keyframe&logits=1&frames=8", video,
                  "application/octet-stream");
  ASSERT_TRUE(q && q->status == 200) << (q ? q->body : "no response");
  EXPECT_EQ(comparable(Json::parse(q->body)), comparable(want));
  const httplib::MultipartFormDataItems form = {{"file", video, "a.mp4", "video/mp4"},
                                                {"top_k", "3", "", ""},
                                                {"sampling", "reference", "", ""},
                                                {"seek", "keyframe", "", ""},
                                                {"logits", "1", "", ""}};
  auto f = c.Post("/v1/classify", form);
  ASSERT_TRUE(f && f->status == 200) << (f ? f->body : "no response");
  EXPECT_EQ(comparable(Json::parse(f->body)), comparable(want));
  // Without logits=1 the record has none, as classify without --logits.
  auto plain = c.Post("/v1/classify", video, "video/mp4");
  ASSERT_TRUE(plain && plain->status == 200);
  EXPECT_FALSE(Json::parse(plain->body).contains("logits"));
  EXPECT_EQ(Json::parse(plain->body)["top_k"].size(), 5u);
}

TEST_F(Serve, EmbedAndTimelineEqualTheirCommands) {
  TempDir out;
  const std::string file = video_path(kArm);
  const std::string jsonl = out.file("e.jsonl");
  auto e = run_command(stam_cmd("embed " + shell_quote(file) + " --output " + shell_quote(jsonl) +
                                " " + tiny_flags(false) + " -q"));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  Json want_embed = Json::parse(read_file(jsonl));
  auto t =
      run_command(stam_cmd("timeline " + shell_quote(file) + " " + tiny_flags() +
                           " --format json --logits --window-seconds 4 --stride-seconds 1 -q"));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const Json want_timeline = Json::parse(t.out);

  auto c = client();
  const std::string video = read_file(file);
  auto re = c.Post("/v1/embed", video, "video/mp4");
  ASSERT_TRUE(re && re->status == 200) << (re ? re->body : "no response");
  EXPECT_EQ(comparable(Json::parse(re->body)), comparable(want_embed));
  auto rt = c.Post("/v1/timeline?logits=1&window_seconds=4&stride_seconds=1", video, "video/mp4");
  ASSERT_TRUE(rt && rt->status == 200) << (rt ? rt->body : "no response");
  EXPECT_EQ(comparable(Json::parse(rt->body)), comparable(want_timeline));
  EXPECT_GT(want_timeline["windows"].size(), 1u);

  auto per_frame = c.Post("/v1/embed?per_frame=1", video, "video/mp4");
  ASSERT_TRUE(per_frame && per_frame->status == 200);
  EXPECT_EQ(Json::parse(per_frame->body)["embedding"].size(), 8u);  // T rows
}

TEST_F(Serve, ModelsHealthAndMetrics) {
  auto c = client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h && h->status == 200);
  EXPECT_EQ(Json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m && m->status == 200);
  const Json j = Json::parse(m->body);
  EXPECT_EQ(j["frames"], 8);
  EXPECT_EQ(j["classes"], 400);
  EXPECT_EQ(j["precision"], "fp32");
  ASSERT_TRUE(c.Post("/v1/classify", read_file(video_path(kShort)), "video/mp4"));
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  const std::string& text = metrics->body;
  EXPECT_TRUE(
      stam::test::contains(text, "stam_requests_total{endpoint=\"/v1/classify\",status=\"200\"}"));
  std::smatch sum;
  ASSERT_TRUE(
      std::regex_search(text, sum, std::regex("stam_request_duration_seconds_sum ([0-9.e+-]+)")));
  EXPECT_GT(std::stod(sum[1]), 0.0);  // the latency is measured, not 0
  EXPECT_TRUE(std::regex_search(text, std::regex("stam_frames_decoded_total [1-9]")));
  EXPECT_TRUE(std::regex_search(text, std::regex("stam_forwards_total [1-9]")));
  EXPECT_TRUE(stam::test::contains(text, "stam_queue_depth 0"));
}

TEST_F(Serve, BadRequestsGetTheirStatusAndAJsonError) {
  auto c = client();
  expect_error(c.Post("/v1/classify", "", "video/mp4"), 400, "empty");
  auto junk = c.Post("/v1/classify", std::string(5000, 'x'), "video/mp4");
  expect_error(junk, 400, "undecodable");
  EXPECT_FALSE(stam::test::contains(junk->body, "stam-upload-")) << "the temp file's name leaked";
  const std::string video = read_file(video_path(kShort));
  expect_error(c.Post("/v1/classify?top_k=0", video, "video/mp4"), 400, "bad_parameter");
  expect_error(c.Post("/v1/classify?top_k=two", video, "video/mp4"), 400, "bad_parameter");
  expect_error(c.Post("/v1/classify?frames=16", video, "video/mp4"), 400, "bad_parameter");
  expect_error(c.Post("/v1/classify?sampling=sideways", video, "video/mp4"), 400, "bad_parameter");
  expect_error(c.Post("/v1/classify?colour=red", video, "video/mp4"), 400, "bad_parameter");
  expect_error(c.Post("/v1/timeline?fps=0", video, "video/mp4"), 400, "bad_parameter");
  expect_error(c.Post("/v1/classify", "{\"file\": 1}", "application/json"), 400, "bad_json");
  expect_error(c.Post("/v1/classify", "not json", "application/json"), 400, "bad_json");
  expect_error(c.Post("/v1/classify", R"({"path": "missing.mp4"})", "application/json"), 400,
               "undecodable");
  expect_error(c.Post("/v1/classify", R"({"path": "../x.mp4"})", "application/json"), 403,
               "forbidden");
  expect_error(c.Post("/v1/classify", Json{{"path", outside_->file("secret.mp4")}}.dump(),
                      "application/json"),
               403, "forbidden");
  expect_error(c.Post("/v1/classify", R"({"path": "link.mp4"})", "application/json"), 403,
               "forbidden");
  expect_error(c.Get("/nowhere"), 404, "not_found");
  expect_error(c.Get("/v1/classify"), 405, "method_not_allowed");
  expect_error(c.Delete("/v1/models"), 405, "method_not_allowed");
  expect_error(c.Post("/health", "", "text/plain"), 405, "method_not_allowed");
  expect_error(c.Post("/v1/classify", video, "text/plain"), 415, "unsupported_media_type");
  EXPECT_TRUE(uploads_gone(temp_dir()));
  auto h = c.Get("/health");
  ASSERT_TRUE(h && h->status == 200) << "the server survived";
}

TEST_F(Serve, HostileMultipartBodiesAre400NeverACrash) {
  auto c = client();
  const std::string type = "multipart/form-data; boundary=XyZ";
  const std::vector<std::string> bodies = {
      "",           // nothing
      "--XyZ\r\n",  // a boundary, then nothing
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nabc",
      "--XyZ\r\nno headers at all\r\n\r\n--XyZ--\r\n",  // a part without a disposition
      "--XyZ\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n3\r\n--XyZ--\r\n",
      "--XyZ\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n" + std::string(10000, '9') +
          "\r\n--XyZ--\r\n",  // a field far over its limit
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n" +
          std::string(3000, '\0') + "\r\n--XyZ--\r\n",  // a file of zeros
      std::string(100000, '-'),
  };
  for (const auto& body : bodies) {
    auto r = c.Post("/v1/classify", body, type);
    ASSERT_TRUE(r) << "no response to: " << body.substr(0, 60);
    EXPECT_EQ(r->status, 400) << body.substr(0, 60) << " -> " << r->body;
  }
  auto no_boundary = c.Post("/v1/classify", "abc", "multipart/form-data");
  ASSERT_TRUE(no_boundary);
  EXPECT_EQ(no_boundary->status, 400) << no_boundary->body;
  EXPECT_TRUE(uploads_gone(temp_dir()));
  auto h = c.Get("/health");
  ASSERT_TRUE(h && h->status == 200);
}

TEST_F(Serve, AnUploadCutOffLeavesNothingBehind) {
  {
    RawConnection cut(running_->port);
    ASSERT_TRUE(cut.connected());
    const std::string head =
        "POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
        "Content-Length: 1000000\r\n\r\n";
    ASSERT_TRUE(cut.send(head + std::string(20000, 'v')));
    // The upload is on disk while it arrives.
    for (int i = 0; i < 500 && uploads_left(temp_dir()) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(uploads_left(temp_dir()), 1u);
  }  // hung up with most of the body unsent
  EXPECT_TRUE(uploads_gone(temp_dir()));
  auto h = client().Get("/health");
  ASSERT_TRUE(h && h->status == 200);
}

TEST(ServeLimits, OverTheUploadLimitIs413) {
  ServeOptions o;
  o.max_upload_bytes = 10000;
  Running s(o);
  auto c = s.client();
  const std::string video = read_file(video_path(kArm));
  ASSERT_GT(video.size(), o.max_upload_bytes);
  expect_error(c.Post("/v1/classify", video, "video/mp4"), 413, "too_large");
  const httplib::MultipartFormDataItems form = {{"file", video, "a.mp4", "video/mp4"}};
  expect_error(c.Post("/v1/classify", form), 413, "too_large");
  // A chunked body states no length: it is cut off at the limit.
  auto chunked = c.Post(
      "/v1/classify",
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset >= video.size()) {
          sink.done();
          return true;
        }
        const size_t n = std::min<size_t>(4096, video.size() - offset);
        return sink.write(video.data() + offset, n);
      },
      "video/mp4");
  expect_error(chunked, 413, "too_large");
  // A client that asks first is told before it sends the body; so is one whose stated length is
  // past what the server would read at all.
  const std::string head =
      "POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: video/mp4\r\n";
  for (const std::string& asked : {head + "Content-Length: 20000\r\nExpect: 100-continue\r\n\r\n",
                                   head + "Content-Length: 1000000000\r\n\r\n"}) {
    const std::string answer = send_raw(s.port, asked);
    EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
    EXPECT_TRUE(stam::test::contains(answer, "\"too_large\"")) << answer;
    EXPECT_TRUE(stam::test::contains(answer, "Connection: close")) << answer;
    EXPECT_TRUE(stam::test::contains(answer, "Content-Length: ")) << answer;  // where it ends
  }
  // One that fits is asked for its body. The body is then sent and answered in full, so that the
  // server is done with its upload before the check below (a client that hung up instead would
  // leave the server removing the file at a moment of its own).
  RawConnection fits(s.port);
  const std::string go_on =
      fits.say(head + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", "\r\n\r\n");
  EXPECT_EQ(go_on.rfind("HTTP/1.1 100 Continue", 0), 0u) << go_on;
  const std::string answer = fits.say("hello");
  EXPECT_NE(answer.find("HTTP/1.1 400"), std::string::npos) << answer;
  EXPECT_TRUE(stam::test::contains(answer, "\"undecodable\"")) << answer;
  EXPECT_TRUE(uploads_gone(s.temp.path().string()));
}

TEST(ServeLimits, AnApiKeyIsAskedOfEveryRouteButHealth) {
  ServeOptions o;
  o.api_key = "s3cret";
  Running s(o);
  auto c = s.client();
  const std::string video = read_file(video_path(kShort));
  expect_error(c.Post("/v1/classify", video, "video/mp4"), 401, "unauthorized");
  expect_error(c.Get("/v1/models"), 401, "unauthorized");
  expect_error(c.Get("/metrics"), 401, "unauthorized");
  expect_error(c.Post("/v1/classify", {{"Authorization", "Bearer s3cre"}}, video, "video/mp4"), 401,
               "unauthorized");
  expect_error(c.Post("/v1/classify", {{"X-API-Key", "s3cret!"}}, video, "video/mp4"), 401,
               "unauthorized");
  auto bearer = c.Post("/v1/classify", {{"Authorization", "Bearer s3cret"}}, video, "video/mp4");
  ASSERT_TRUE(bearer);
  EXPECT_EQ(bearer->status, 200) << bearer->body;
  auto header = c.Get("/v1/models", {{"X-API-Key", "s3cret"}});
  ASSERT_TRUE(header);
  EXPECT_EQ(header->status, 200);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST(ServeLimits, AFullQueueAnswers503WithRetryAfter) {
  Gate gate;
  ServeOptions o;
  o.queue = 1;
  o.before_forward = [&gate] { gate.pass(); };
  Running s(o);
  const std::string video = read_file(video_path(kShort));
  auto first = std::async(std::launch::async, [&] {
    auto r = s.client().Post("/v1/classify", video, "video/mp4");
    return r ? r->status : -1;
  });
  ASSERT_TRUE(gate.wait_for_waiter());  // the first request holds the only slot
  auto c = s.client();
  auto full = c.Post("/v1/classify", video, "video/mp4");
  expect_error(full, 503, "queue_full");
  EXPECT_EQ(full->get_header_value("Retry-After"), "1");
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(stam::test::contains(metrics->body, "stam_queue_depth 1"));
  gate.release();
  EXPECT_EQ(first.get(), 200);
  auto again = c.Post("/v1/classify", video, "video/mp4");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST(ServeLimits, AClientGoneMidInferenceCostsNothingElse) {
  Gate gate;
  ServeOptions o;
  o.before_forward = [&gate] { gate.pass(); };
  Running s(o);
  const std::string video = read_file(video_path(kShort));
  auto gone = std::async(std::launch::async, [&] {
    httplib::Client impatient("127.0.0.1", s.port);
    impatient.set_read_timeout(0, 300'000);  // gives up while the model waits at the gate
    return static_cast<bool>(impatient.Post("/v1/classify", video, "video/mp4"));
  });
  ASSERT_TRUE(gate.wait_for_waiter());
  EXPECT_FALSE(gone.get());
  gate.release();
  auto next = s.client().Post("/v1/classify", video, "video/mp4");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_TRUE(uploads_gone(s.temp.path().string()));
}

TEST(ServeLimits, AModelThatCannotLoadLeavesHealthAt503) {
  TempDir temp;
  ServeOptions o;
  o.port = 0;
  o.temp_dir = temp.path().string();
  stam::ModelOptions m = stam::test::tiny_model_options();
  m.weights = temp.file("missing.pth");
  Server server(m, o);
  const int port = server.start();
  for (int i = 0; i < 200 && !server.load_error(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(server.load_error());
  httplib::Client c("127.0.0.1", port);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_EQ(Json::parse(h->body)["status"], "error");
  expect_error(c.Post("/v1/classify", read_file(video_path(kShort)), "video/mp4"), 503, "loading");
}

// Eight clients at once, two videos: each answer is its own video's, and the model thread ran
// some of them together.
TEST(ServeConcurrency, ConcurrentRequestsAreBatchedAndNeverMixed) {
  ServeOptions o;
  o.max_batch = 4;
  o.decode_workers = 2;
  // A slow model lets the requests pile up, so that the forwards take several.
  o.before_forward = [] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); };
  Running s(o);
  const std::vector<std::string> names = {kArm, kShort};
  std::vector<std::string> bodies;
  std::vector<std::vector<double>> want;
  for (const auto& n : names) {
    bodies.push_back(read_file(video_path(n)));
    want.push_back(logits_of(classify_record(video_path(n))));
  }
  ASSERT_GT(stam::test::relative_error(want[0], want[1]), 1e-2) << "the videos must differ";
  constexpr int kClients = 8, kEach = 2;
  std::vector<std::future<std::vector<std::string>>> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(std::async(std::launch::async, [&, i] {
      std::vector<std::string> got;
      auto c = s.client();
      for (int k = 0; k < kEach; ++k) {
        auto r = c.Post("/v1/classify?logits=1", bodies[(i + k) % 2], "video/mp4");
        got.push_back(r && r->status == 200 ? r->body : "");
      }
      return got;
    }));
  for (int i = 0; i < kClients; ++i) {
    const auto got = clients[i].get();
    for (int k = 0; k < kEach; ++k) {
      ASSERT_FALSE(got[k].empty()) << "client " << i << " request " << k;
      const auto logits = logits_of(Json::parse(got[k]));
      // A batch's rows may differ from a lone forward's in the last bits, never by a video.
      EXPECT_LT(stam::test::relative_error(logits, want[(i + k) % 2]), 1e-4)
          << "client " << i << " request " << k;
    }
  }
  auto metrics = s.client().Get("/metrics");
  ASSERT_TRUE(metrics);
  std::smatch ones, count;
  ASSERT_TRUE(std::regex_search(metrics->body, ones,
                                std::regex("stam_batch_size_bucket\\{le=\"1\"\\} ([0-9]+)")));
  ASSERT_TRUE(
      std::regex_search(metrics->body, count, std::regex("stam_batch_size_count ([0-9]+)")));
  EXPECT_LT(std::stoi(ones[1]), std::stoi(count[1])) << "no forward took more than one clip";
  EXPECT_LT(std::stoi(count[1]), kClients * kEach);
}

// The binary: SIGTERM while a request's body is still arriving; that request is answered, then
// the server exits 0.
TEST(ServeCli, SigtermFinishesTheRequestInProgressThenExits0) {
  TempDir dir, uploads;
  const std::string err = dir.file("err.txt"), pid_file = dir.file("pid");
  auto server = std::async(std::launch::async, [&] {
    return run_command("TMPDIR=" + shell_quote(uploads.path().string()) + " " +
                       stam_cmd("serve --port 0 " + tiny_flags() + " 2>" + shell_quote(err) +
                                " & echo $! > " + shell_quote(pid_file) + "; wait $!"));
  });
  int port = 0;
  std::smatch m;
  for (int i = 0; i < 600 && port == 0; ++i) {
    const std::string text = read_file(err);
    if (std::regex_search(text, m, std::regex("listening on http://127.0.0.1:([0-9]+)")))
      port = std::stoi(m[1]);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(port, 0) << read_file(err);
  ASSERT_TRUE(wait_healthy(port)) << read_file(err);
  const pid_t pid = std::stoi(read_file(pid_file));
  const std::string video = read_file(video_path(kArm));
  bool signalled = false;
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto r = c.Post(
      "/v1/classify", video.size(),
      [&](size_t offset, size_t length, httplib::DataSink& sink) {
        if (!signalled && offset >= video.size() / 2) {
          signalled = true;
          // Sent bytes may wait in the socket's buffers: the signal goes once the server is
          // reading this body into its upload file, which is what "in progress" means.
          for (int i = 0; i < 200 && uploads_left(uploads.path().string()) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          ::kill(pid, SIGTERM);
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
        return sink.write(video.data() + offset, std::min<size_t>(length, 8192));
      },
      "video/mp4");
  EXPECT_TRUE(signalled);
  ASSERT_TRUE(r) << read_file(err);
  EXPECT_EQ(r->status, 200) << r->body;
  Json want = comparable(classify_record(video_path(kArm)));
  want.erase("logits");
  EXPECT_EQ(comparable(Json::parse(r->body)), want);
  const auto done = server.get();
  EXPECT_EQ(done.exit_code, 0) << read_file(err);
  EXPECT_TRUE(stam::test::contains(read_file(err), "stopping"));
  // It no longer listens.
  httplib::Client after("127.0.0.1", port);
  EXPECT_FALSE(after.Get("/health"));
}

// scripts/load_test.py: every answer checked against its own video; a wrong expectation is
// reported as mixed and fails the run.
TEST_F(Serve, LoadTestScriptChecksEachAnswerAgainstItsVideo) {
  TempDir dir;
  const std::string arm = video_path(kArm), other = video_path(kShort);
  const std::string script = "python3 " +
                             shell_quote(stam::test::source_path("scripts/load_test.py")) +
                             " --url http://127.0.0.1:" + std::to_string(running_->port) +
                             " --clients 3 --requests 2 --json ";
  const auto ok = run_command(script + shell_quote(arm) + " " + shell_quote(other));
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  const Json summary = Json::parse(ok.out);
  EXPECT_EQ(summary["ok"], 6);
  EXPECT_TRUE(summary["errors"].empty());
  EXPECT_GT(summary["throughput_per_s"].get<double>(), 0.0);

  const std::string wrong = dir.file("wrong.json");
  stam::test::write_file(wrong, classify_record(other).dump() + "\n");
  const auto mixed =
      run_command(script + "--expect " + shell_quote(arm + "=" + wrong) + " " + shell_quote(arm));
  EXPECT_EQ(mixed.exit_code, 1) << mixed.out << mixed.err;
  EXPECT_EQ(Json::parse(mixed.out)["errors"]["mixed"], 6);
}

TEST(ServeCli, AModelThatCannotLoadOrAnAddressThatCannotBeBoundExits) {
  auto missing =
      run_command(stam_cmd("serve --port 0 -w /nonexistent/stam.pth --labels " +
                           shell_quote(stam::test::source_path("models/kinetics400_labels.txt"))));
  EXPECT_EQ(missing.exit_code, 4) << missing.err;
  EXPECT_TRUE(stam::test::contains(missing.err, "/nonexistent/stam.pth")) << missing.err;
  auto host = run_command(stam_cmd("serve --port 0 --host 256.1.1.1 " + tiny_flags()));
  EXPECT_EQ(host.exit_code, 2) << host.err;
  EXPECT_TRUE(stam::test::contains(host.err, "cannot listen on 256.1.1.1")) << host.err;
}
