#pragma once
// The server's error responses: {"error": {"code": "<short name>", "message": "..."}} with the
// HTTP status that names the kind of failure.
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace stam::serve {

// A request that cannot be answered with a result; thrown by the request's handling and turned
// into its response (send_error).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

nlohmann::ordered_json error_body(const std::string& code, const std::string& message);
// `body` as the response, application/json, one line.
void send_json(httplib::Response& res, int status, const nlohmann::ordered_json& body);
// The error's body and status; a 503 also gets Retry-After.
void send_error(httplib::Response& res, const HttpError& error);

}  // namespace stam::serve
