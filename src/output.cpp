#include "output.hpp"

#include "stam/error.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace stam {

void check_output_path(const std::string& path, const std::string& flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UsageError(flag + " " + path + " is a directory; give a file path");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw UsageError(flag + " " + path + ": folder " + parent.string() +
                     " does not exist; create it first");
  // Open it as the write will (creating it, truncating nothing); a file made only for the
  // question is removed again. Only a regular file or a new one: opening a FIFO to write waits
  // for a reader (the callers that refuse such outputs say so in their own words).
  const auto status = std::filesystem::status(path, ec);
  const bool existed = std::filesystem::exists(status);
  if (existed && !std::filesystem::is_regular_file(status)) return;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    throw UsageError(flag + " " + path + ": cannot be written (" + std::strerror(err) + ")");
  }
  ::close(fd);
  if (!existed) ::unlink(path.c_str());
}

nlohmann::ordered_json top_k_json(const std::vector<Prediction>& top_k) {
  auto top = nlohmann::ordered_json::array();
  for (const auto& p : top_k) {
    nlohmann::ordered_json entry;  // assigned key by key: an initializer list could be an array
    entry["index"] = p.index;
    entry["label"] = p.label;
    entry["score"] = p.score;
    top.push_back(std::move(entry));
  }
  return top;
}

nlohmann::ordered_json to_json(const Result& r, bool with_logits) {
  using Json = nlohmann::ordered_json;
  Json timings;
  timings["decode"] = round_to(r.timings.decode_ms, 10);
  timings["preprocess"] = round_to(r.timings.preprocess_ms, 10);
  timings["spatial"] = round_to(r.timings.spatial_ms, 10);
  timings["temporal"] = round_to(r.timings.temporal_ms, 10);
  timings["total"] = round_to(r.timings.total_ms, 10);
  Json j;
  j["input"] = path_text(r.input);
  j["frames"] = r.frames;
  j["frame_indices"] = r.frame_indices;
  j["top_k"] = top_k_json(r.top_k);
  j["timings_ms"] = std::move(timings);
  j["device"] = r.device;
  j["precision"] = r.precision;
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  if (with_logits) j["logits"] = r.logits;
  return j;
}

nlohmann::ordered_json error_json(const std::string& input, const std::string& message) {
  nlohmann::ordered_json j;
  j["input"] = path_text(input);
  j["error"] = message;
  return j;
}

std::string dump_json(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string to_text(const Result& r, std::optional<double> load_ms) {
  std::ostringstream o;
  o << r.input << ": " << r.frames << (r.frames == 1 ? " frame, index" : " frames, indices");
  for (auto i : r.frame_indices) o << ' ' << i;
  o << "\n\n  rank  score   class\n";
  for (size_t i = 0; i < r.top_k.size(); ++i)
    o << format_number("  %4.0f", static_cast<double>(i + 1))
      << format_number("  %6.4f", r.top_k[i].score) << "  " << r.top_k[i].label << " ("
      << r.top_k[i].index << ")\n";
  const auto& t = r.timings;
  o << "\ntimings: ";
  if (load_ms) o << "model load " << format_number("%.1f", *load_ms) << " ms | ";
  o << "decode " << format_number("%.1f", t.decode_ms) << " ms | preprocess "
    << format_number("%.1f", t.preprocess_ms) << " ms | spatial "
    << format_number("%.1f", t.spatial_ms) << " ms | temporal "
    << format_number("%.1f", t.temporal_ms) << " ms | total " << format_number("%.1f", t.total_ms)
    << " ms | " << r.device << " " << r.precision << "\n";
  if (!r.warnings.empty()) {
    o << "\nwarnings:\n";
    for (const auto& w : r.warnings) o << "  - " << w << "\n";
  }
  return o.str();
}

}  // namespace stam
