#include <sstream>

#include "output.hpp"
#include "timeline/timeline.hpp"

namespace stam {

namespace {

int64_t window_frames_total(const Timeline& t) {
  return static_cast<int64_t>(t.windows.size()) * t.plan.frames;
}

std::string seconds(double s) {
  return format_number("%8.2f", s);
}

}  // namespace

nlohmann::ordered_json timeline_json(const Timeline& t, bool with_logits) {
  using Json = nlohmann::ordered_json;
  Json windows = Json::array();
  for (const auto& w : t.windows) {
    Json j;
    j["start_s"] = round_to(w.start_s, 1000);
    j["end_s"] = round_to(w.end_s, 1000);
    j["frame_indices"] = w.frame_indices;
    j["top_k"] = top_k_json(w.top_k);
    if (with_logits) j["logits"] = w.logits;
    windows.push_back(std::move(j));
  }
  Json segments = Json::array();
  for (const auto& s : t.segments) {
    Json j;
    j["start_s"] = round_to(s.start_s, 1000);
    j["end_s"] = round_to(s.end_s, 1000);
    j["index"] = s.index;
    j["label"] = s.label;
    j["score"] = s.score;
    j["windows"] = s.windows;
    segments.push_back(std::move(j));
  }
  Json timings;
  timings["decode"] = round_to(t.timings.decode_ms, 10);
  timings["spatial"] = round_to(t.timings.spatial_ms, 10);
  timings["temporal"] = round_to(t.timings.temporal_ms, 10);
  timings["total"] = round_to(t.timings.total_ms, 10);
  Json j;
  j["input"] = path_text(t.input);
  j["video_fps"] = t.video_fps;
  j["frame_count"] = t.frame_count;
  j["fps"] = t.plan.fps;
  j["window_frames"] = t.plan.frames;
  j["stride_frames"] = t.plan.stride;
  j["samples"] = t.samples;
  j["frames_encoded"] = t.frames_encoded;
  j["window_frames_total"] = window_frames_total(t);
  j["windows"] = std::move(windows);
  j["segments"] = std::move(segments);
  j["timings_ms"] = std::move(timings);
  j["device"] = t.device;
  j["precision"] = t.precision;
  if (!t.warnings.empty()) j["warnings"] = t.warnings;
  return j;
}

std::string timeline_csv(const Timeline& t) {
  const size_t k = t.windows.empty() ? 0 : t.windows.front().top_k.size();
  std::string out = "start_s,end_s";
  for (size_t i = 1; i <= k; ++i)
    out += ",label_" + std::to_string(i) + ",score_" + std::to_string(i);
  out += '\n';
  for (const auto& w : t.windows) {
    out += format_number("%.3f", w.start_s) + "," + format_number("%.3f", w.end_s);
    for (const auto& p : w.top_k)
      out += "," + csv_field(p.label) + "," + format_number("%.6g", p.score);
    out += '\n';
  }
  return out;
}

std::string timeline_text(const Timeline& t) {
  std::ostringstream o;
  o << t.input << ": " << t.frame_count << " frames at " << format_number("%.3g", t.video_fps)
    << " fps; windows of " << t.plan.frames << " frames at " << format_number("%.3g", t.plan.fps)
    << " fps (" << format_number("%.2f", static_cast<double>(t.plan.frames) / t.plan.fps)
    << " s), one every " << t.plan.stride << (t.plan.stride == 1 ? " sample (" : " samples (")
    << format_number("%.2f", static_cast<double>(t.plan.stride) / t.plan.fps)
    << " s)\n\n   start_s     end_s  top labels\n";
  for (const auto& w : t.windows) {
    o << "  " << seconds(w.start_s) << "  " << seconds(w.end_s) << " ";
    for (size_t i = 0; i < w.top_k.size(); ++i)
      o << (i ? " | " : " ") << w.top_k[i].label << format_number(" %.3f", w.top_k[i].score);
    o << '\n';
  }
  o << "\nsegments (top-1 label held):\n";
  for (const auto& s : t.segments)
    o << "  " << seconds(s.start_s) << "  " << seconds(s.end_s) << "  " << s.label << " ("
      << s.windows << (s.windows == 1 ? " window" : " windows") << ", mean score "
      << format_number("%.3f", s.score) << ")\n";
  o << "\nframes encoded: " << t.frames_encoded << " for " << t.windows.size()
    << (t.windows.size() == 1 ? " window x " : " windows x ") << t.plan.frames << " = "
    << window_frames_total(t) << " window frames\n";
  o << "timings: decode " << format_number("%.1f", t.timings.decode_ms) << " ms | spatial "
    << format_number("%.1f", t.timings.spatial_ms) << " ms | temporal "
    << format_number("%.1f", t.timings.temporal_ms) << " ms | total "
    << format_number("%.1f", t.timings.total_ms) << " ms | " << t.device << " " << t.precision
    << "\n";
  if (!t.warnings.empty()) {
    o << "\nwarnings:\n";
    for (const auto& w : t.warnings) o << "  - " << w << "\n";
  }
  return o.str();
}

}  // namespace stam
