#include "serve/http_error.hpp"

#include "output.hpp"

namespace stam::serve {

nlohmann::ordered_json error_body(const std::string& code, const std::string& message) {
  nlohmann::ordered_json inner;
  inner["code"] = code;
  inner["message"] = message;
  nlohmann::ordered_json j;
  j["error"] = std::move(inner);
  return j;
}

void send_json(httplib::Response& res, int status, const nlohmann::ordered_json& body) {
  res.status = status;
  res.set_content(dump_json(body) + "\n", "application/json");
}

void send_error(httplib::Response& res, const HttpError& error) {
  if (error.status() == 503) res.set_header("Retry-After", "1");
  send_json(res, error.status(), error_body(error.code(), error.what()));
}

}  // namespace stam::serve
