#include "stam/output.hpp"

#include <cstdio>
#include <sstream>

namespace stam {

nlohmann::json to_json(const Result& r, bool with_logits) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& p : r.top_k)
    top.push_back({{"index", p.index}, {"label", p.label}, {"score", p.score}});
  nlohmann::json j = {
      {"input", r.input},
      {"frames", r.frames},
      {"frame_indices", r.frame_indices},
      {"top_k", top},
      {"timings_ms",
       {{"decode", r.timings.decode_ms},
        {"preprocess", r.timings.preprocess_ms},
        {"spatial", r.timings.spatial_ms},
        {"temporal", r.timings.temporal_ms},
        {"total", r.timings.total_ms}}},
      {"device", r.device},
      {"precision", r.precision},
  };
  if (with_logits) j["logits"] = r.logits;
  return j;
}

nlohmann::json error_json(const std::string& input, const std::string& message) {
  return {{"input", input}, {"error", message}};
}

namespace {

std::string fmt(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

}  // namespace

std::string to_text(const Result& r) {
  std::ostringstream o;
  o << r.input << ": " << r.frames << " frames, indices";
  for (auto i : r.frame_indices) o << ' ' << i;
  o << "\n\n  rank  score   class\n";
  for (size_t i = 0; i < r.top_k.size(); ++i)
    o << fmt("  %4.0f", static_cast<double>(i + 1)) << fmt("  %6.4f", r.top_k[i].score) << "  "
      << r.top_k[i].label << " (" << r.top_k[i].index << ")\n";
  const auto& t = r.timings;
  o << "\ntimings: decode " << fmt("%.1f", t.decode_ms) << " ms | preprocess "
    << fmt("%.1f", t.preprocess_ms) << " ms | spatial " << fmt("%.1f", t.spatial_ms)
    << " ms | temporal " << fmt("%.1f", t.temporal_ms) << " ms | total " << fmt("%.1f", t.total_ms)
    << " ms | " << r.device << " " << r.precision << "\n";
  return o.str();
}

}  // namespace stam
