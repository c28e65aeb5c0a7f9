// The sampled reads of decode.hpp over either kind of input, a video file (video_file.cpp) or a
// frames folder (frames_folder.cpp): choosing the frames, checking an input, and the result.
#include "decode/decode.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "decode/detail.hpp"
#include "stam/error.hpp"
#include "util/files.hpp"
#include "util/text.hpp"

namespace stam {
namespace {

// The decoded frame nearest to `pos` (preferring earlier ones), for positions that failed.
const cv::Mat& nearest_frame(const std::map<int64_t, cv::Mat>& frames, int64_t pos,
                             int64_t* taken) {
  auto it = frames.upper_bound(pos);
  if (it != frames.begin()) --it;
  *taken = it->first;
  return it->second;
}

// A frames folder has no key frames to prefer: every image is read as it is.
VideoFrames read_any(const std::string& path, const Chooser& choose, Seek seek,
                     const FrameTransform& transform) {
  if (path.empty()) throw InputError("empty input path");
  FrameKeeper keep(transform);
  if (is_frames_folder(path)) return read_folder(path, choose, keep);
  return read_video(path, choose, seek, keep);
}

}  // namespace

cv::Mat bgr_to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

void fill_images(VideoFrames& out, const std::vector<int64_t>& indices,
                 const std::map<int64_t, cv::Mat>& frames, const FrameKeeper& keep) {
  bool substituted = false;
  std::set<int64_t> used;
  for (int64_t idx : indices) {
    int64_t taken = idx;
    const cv::Mat& img = nearest_frame(frames, idx, &taken);
    substituted |= taken != idx;
    // Repeated positions get their own copy so callers may modify images independently.
    out.images.push_back(used.insert(taken).second ? img : img.clone());
    out.indices.push_back(taken);
  }
  if (substituted) {
    out.warnings.emplace_back(
        "some sampled frames could not be decoded: the nearest decoded frames were used instead");
  }
  keep.report(out);
}

void check_input(const std::string& path) {
  if (path.empty()) throw InputError("empty input path");
  if (is_frames_folder(path)) {
    list_images(path);
  } else {
    check_readable_file(path);
  }
}

VideoFrames read_frames(const std::string& path, int64_t t, Sampling sampling, Seek seek,
                        const FrameTransform& transform) {
  if (t < 1) throw UsageError("number of frames to sample must be >= 1, got " + std::to_string(t));
  std::vector<int64_t> chosen;  // the last choice, before any key-frame mapping
  auto choose = [&](int64_t n, double fps) {
    Selection s;
    if (sampling == Sampling::kUniform) {
      s.indices = uniform_indices(n, t);
      s.depends_on_end = true;  // the positions spread over all n frames
      chosen = s.indices;
      return s;
    }
    if (!(fps > 0)) {
      throw InputError(quoted_path(path) +
                       ": reference sampling needs the frame rate, which the file "
                       "does not state");
    }
    s.indices = reference_indices(n, fps, t);
    // Reference positions depend on n only where they were clamped to the last frame.
    s.depends_on_end =
        reference_indices(std::numeric_limits<int64_t>::max() / 4, fps, t) != s.indices;
    chosen = s.indices;
    return s;
  };
  VideoFrames out = read_any(path, choose, seek, transform);
  const size_t distinct = sorted_unique(chosen).size();
  if (distinct < chosen.size()) {
    out.warnings.push_back("the video is too short for " + std::to_string(t) + " samples: only " +
                           std::to_string(distinct) + " distinct frame" +
                           (distinct == 1 ? "" : "s") + ", some used more than once");
  }
  return out;
}

VideoFrames read_frames_at(const std::string& path, const std::vector<int64_t>& indices) {
  if (indices.empty()) throw UsageError("read_frames_at: no frame positions given");
  for (int64_t i : indices) {
    if (i < 0) throw InputError(quoted_path(path) + ": negative frame position requested");
  }
  bool clamped = false;
  auto choose = [&](int64_t n, double) {
    Selection s;
    for (int64_t i : indices) {
      s.depends_on_end |= i >= n;
      s.indices.push_back(std::min(i, n - 1));
    }
    clamped = s.depends_on_end;
    return s;
  };
  VideoFrames out = read_any(path, choose, Seek::kExact, {});
  if (clamped) out.warnings.emplace_back("positions past the last frame were clamped");
  return out;
}

}  // namespace stam
