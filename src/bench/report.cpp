// Rendering a bench report as JSON, a text table and CSV.
#include <sstream>

#include "bench/bench.hpp"
#include "output.hpp"

namespace stam {

namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// Sum of floors over sum of medians: how close the whole sweep runs to the floor.
double share_of_floor(const BenchReport& r) {
  double floor = 0, actual = 0;
  for (const auto& row : r.rows) {
    floor += row.floor_ms;
    actual += row.median_ms;
  }
  return actual > 0 ? floor / actual : 0;
}

}  // namespace

nlohmann::ordered_json bench_json(const BenchReport& r) {
  const SystemInfo& s = r.system;
  nlohmann::ordered_json sys = {
      {"cpu", s.cpu},
      {"cpu_features", s.cpu_features},
      {"threads", s.threads},
      {"libtorch", s.libtorch},
      {"opencv", s.opencv},
      {"device", s.device},
      {"precision", s.precision},
      {"precision_reason", s.precision_reason},
      {"gemm_backend", s.gemm_backend},
      {"blas", s.blas},
      {"gemm_shape", s.gemm_shape},
      {"gemm_gflop_per_s", s.gemm_gflops},
      {"blas_gemm_gflop_per_s",
       s.blas_gemm_gflops ? nlohmann::ordered_json(*s.blas_gemm_gflops) : nullptr},
      {"floor_gflop_per_s", s.floor_gflops}};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& b : r.rows) {
    nlohmann::ordered_json j = {{"frames", b.frames},
                                {"batch", b.batch},
                                {"median_ms", b.median_ms},
                                {"p90_ms", b.p90_ms},
                                {"min_ms", b.min_ms},
                                {"spatial_ms", b.spatial_ms},
                                {"temporal_ms", b.temporal_ms},
                                {"videos_per_s", b.videos_per_s},
                                {"frames_per_s", b.frames_per_s},
                                {"gflop", b.gflop},
                                {"gflop_per_s", b.gflop_per_s},
                                {"floor_ms", b.floor_ms},
                                {"of_floor", b.floor_ms / b.median_ms}};
    j["published_top1"] = b.published_top1 ? nlohmann::ordered_json(*b.published_top1) : nullptr;
    if (b.decode_ms) j["decode_ms"] = *b.decode_ms;
    if (b.preprocess_ms) j["preprocess_ms"] = *b.preprocess_ms;
    if (b.with_read_ms) j["with_read_ms"] = *b.with_read_ms;
    rows.push_back(std::move(j));
  }
  return {{"system", sys}, {"results", rows}};
}

std::string bench_text(const BenchReport& r) {
  const SystemInfo& s = r.system;
  std::ostringstream o;
  o << "cpu:    " << s.cpu << " (" << join(s.cpu_features, " ") << ")\n"
    << "run:    " << s.device << " " << s.precision << " (" << s.precision_reason << "), "
    << s.threads << " threads, LibTorch " << s.libtorch << ", OpenCV " << s.opencv << "\n"
    << "gemm:   " << s.gemm_backend << ": " << format_number("%.0f", s.gemm_gflops)
    << " GFLOP/s on " << s.gemm_shape << "\n";
  o << "blas:   " << s.blas << ": "
    << (s.blas_gemm_gflops ? format_number("%.0f", *s.blas_gemm_gflops) + " GFLOP/s"
                           : "not timed (the model's " + s.precision + " products do not use it)")
    << "\n";
  const bool video = !r.rows.empty() && r.rows.front().decode_ms.has_value();
  o << "\nframes  batch  median ms  p90 ms   min ms  spatial  temporal  videos/s  frames/s  "
       "GFLOP  GFLOP/s  floor ms  of floor  top-1*";
  o << (video ? "  decode ms  prep ms  with read ms\n" : "\n");
  for (const auto& b : r.rows) {
    o << format_number("%6.0f", double(b.frames)) << format_number("%7.0f", double(b.batch))
      << format_number("%11.1f", b.median_ms) << format_number("%8.1f", b.p90_ms)
      << format_number("%9.1f", b.min_ms) << format_number("%9.1f", b.spatial_ms)
      << format_number("%10.1f", b.temporal_ms) << format_number("%10.3f", b.videos_per_s)
      << format_number("%10.2f", b.frames_per_s)
      << format_number(b.gflop < 10 ? "%7.2f" : "%7.1f", b.gflop)
      << format_number("%9.1f", b.gflop_per_s) << format_number("%10.1f", b.floor_ms)
      << format_number("%9.0f%%", 100.0 * b.floor_ms / b.median_ms)
      << (b.published_top1 ? format_number("%8.2f", *b.published_top1) : std::string("       -"));
    if (video)
      o << format_number("%11.1f", *b.decode_ms) << format_number("%9.1f", *b.preprocess_ms)
        << format_number("%14.1f", *b.with_read_ms);
    o << "\n";
  }
  o << "* published Kinetics-400 top-1 (%) of STAM at that frame count\n";
  if (video)
    o << "with read: one forward with the video read beside it, as classify and batch read the "
         "next video\n";
  o << "GFLOP: per video; floor: the forward's GFLOP at " << format_number("%.0f", s.floor_gflops)
    << " GFLOP/s, the best measured rate of the model's large products\n"
    << "model at " << format_number("%.0f", 100.0 * share_of_floor(r)) << "% of the floor over "
    << r.rows.size() << " frame count" << (r.rows.size() == 1 ? "" : "s") << "\n";
  return o.str();
}

std::string bench_csv(const BenchReport& r) {
  std::ostringstream o;
  o << "frames,batch,median_ms,p90_ms,min_ms,spatial_ms,temporal_ms,videos_per_s,frames_per_s,"
       "gflop,gflop_per_s,floor_ms,of_floor,published_top1,decode_ms,preprocess_ms,with_read_ms\n";
  auto opt = [](const std::optional<double>& v) {
    return v ? format_number("%.3f", *v) : std::string();
  };
  for (const auto& b : r.rows)
    o << b.frames << ',' << b.batch << ',' << format_number("%.3f", b.median_ms) << ','
      << format_number("%.3f", b.p90_ms) << ',' << format_number("%.3f", b.min_ms) << ','
      << format_number("%.3f", b.spatial_ms) << ',' << format_number("%.3f", b.temporal_ms) << ','
      << format_number("%.4f", b.videos_per_s) << ',' << format_number("%.3f", b.frames_per_s)
      << ',' << format_number("%.3f", b.gflop) << ',' << format_number("%.3f", b.gflop_per_s) << ','
      << format_number("%.3f", b.floor_ms) << ',' << format_number("%.4f", b.floor_ms / b.median_ms)
      << ',' << opt(b.published_top1) << ',' << opt(b.decode_ms) << ',' << opt(b.preprocess_ms)
      << ',' << opt(b.with_read_ms) << '\n';
  return o.str();
}

}  // namespace stam
