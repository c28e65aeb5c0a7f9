#pragma once
// stam serve's library half: an HTTP server (cpp-httplib) that labels uploaded videos with one
// model, loaded once in the background while the listener already answers /health.
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "stam/stam.hpp"

namespace stam::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: a free port, see Server::port()
  size_t max_upload_bytes = size_t{512} << 20;
  size_t queue = 16;  // requests in progress at most; the HTTP threads are a few more
  size_t max_batch = 4;
  int decode_workers = 2;                // 0: as batch chooses (batch/decoding.hpp)
  std::string api_key;                   // "": no key asked
  std::string allow_dir;                 // "": JSON path requests are refused
  std::string temp_dir;                  // "": $TMPDIR or /tmp
  std::function<void()> before_forward;  // test hook (WorkerOptions)
};

class Server {
 public:
  Server(ModelOptions model, ServeOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, starts listening and loading the model; returns the bound port. Throws UsageError when
  // the address cannot be bound.
  int start();
  // Stops accepting, lets the requests in progress finish, then stops the model's threads.
  void stop();
  // The model's load failure, once it failed (null while loading or after it loaded).
  std::exception_ptr load_error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stam::serve
