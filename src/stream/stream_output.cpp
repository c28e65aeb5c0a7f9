// One line per emitted window: JSON (--format jsonl) or text.
#include "output.hpp"
#include "stream/stream.hpp"

namespace stam::stream {

nlohmann::ordered_json window_json(const StreamWindow& w, bool with_logits) {
  nlohmann::ordered_json j;
  j["t_start_s"] = round_to(w.t_start_s, 1000);
  j["t_end_s"] = round_to(w.t_end_s, 1000);
  j["top_k"] = top_k_json(w.top_k);
  j["latency_ms"] = round_to(w.latency_ms, 10);
  j["dropped_frames"] = w.dropped_frames;
  if (with_logits) j["logits"] = w.logits;
  return j;
}

std::string window_text(const StreamWindow& w) {
  std::string line = format_number("%8.2f", w.t_start_s) + "  " + format_number("%8.2f", w.t_end_s);
  line += " ";
  for (size_t i = 0; i < w.top_k.size(); ++i)
    line += (i ? " | " : " ") + w.top_k[i].label + format_number(" %.3f", w.top_k[i].score);
  if (w.top_k.empty()) line += " (no label above the threshold)";
  line += "  (latency " + format_number("%.0f", w.latency_ms) + " ms";
  if (w.dropped_frames > 0) line += ", " + std::to_string(w.dropped_frames) + " dropped";
  return line + ")";
}

}  // namespace stam::stream
