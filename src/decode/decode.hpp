#pragma once
// Reads the sampled frames of one input: a video file (OpenCV's FFmpeg backend) or a folder of
// image files taken, sorted by name, as the frames of one video.
#include <opencv2/core.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sample.hpp"

namespace stam {

struct VideoFrames {
  std::vector<cv::Mat> images;   // RGB, CV_8UC3, one per sampled index, in sample order (or
                                 // what the read's FrameTransform made of them)
  std::vector<int64_t> indices;  // frame positions taken (may repeat when short)
  int64_t frame_count = 0;       // frames the input really has
  double fps = 0.0;              // stream's average rate (0 for a frames folder)
  int width = 0, height = 0;     // as decoded (after rotation, before any FrameTransform)
  double transform_ms = 0;       // time spent in the FrameTransform, part of the read
  // Short sentences, one per condition the result rests on but a clean video does not have
  // (header count wrong, frames repeated, uneven timestamps, rotation applied, ...). README.md,
  // "Warnings and errors", lists them. None contains "; " (CSV joins them with it).
  std::vector<std::string> warnings;
  bool seeked = false;  // some frames were reached by seeking instead of reading on
};

// Notices a decode that makes no progress: each step forward (a packet read, a frame decoded)
// restarts the clock, and expired() is true once `limit_s` has passed without one. A slow decode
// that keeps producing frames (4K, hours of video) never expires.
class Watchdog {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic
  explicit Watchdog(double limit_s, Clock clock = monotonic_seconds);
  void progress();
  bool expired() const;
  double limit_s() const { return limit_s_; }
  static double monotonic_seconds();

 private:
  double limit_s_;
  Clock clock_;
  double last_;
};

// Seconds a decode may go without progress before it is stopped with an InputError:
// $STAM_DECODE_TIMEOUT when set, else 60. Throws UsageError when the variable is not a number
// of seconds > 0.
double decode_timeout_s();

// The checks that need no decoding, so callers can refuse a bad input before loading a model:
// throws InputError naming the path when it is missing, empty, unreadable, neither a regular
// file nor a folder (a FIFO or device could block forever), or a folder without image files.
void check_input(const std::string& path);

// Frame rate assumed for a frames folder when sampling with Sampling::kReference (the folder has
// no timing of its own; 30 fps is the most common rate of the videos such folders come from).
// VideoFrames::fps stays 0 for a folder.
constexpr double kFramesFolderFps = 30.0;

// True when `path` is a directory (treated as a frames folder).
bool is_frames_folder(const std::string& path);

// Samples `t` frames with `sampling`. Throws InputError naming the path and the problem (missing,
// not a video, no decodable frames, empty folder, unreadable image, no progress for
// decode_timeout_s()).
// Every index is exactly the decoder's n-th output frame, as a sequential read (grab() every
// frame, retrieve() only the sampled ones) counts it. Packets the decoder refuses (a damaged
// stretch) are passed over, as ffprobe -count_frames does, with a warning. When the header's frame
// count turns out wrong (the file ends early, or has frames past it under uniform sampling), the
// real count is used, the frames are sampled again and a warning says so. With reference sampling
// and a header count covering all sampled positions, frame_count is the header's count. In an
// MP4/MOV or Matroska/WebM file whose packets show a constant frame rate, the count and the key
// frames come from the packets and each sampled frame is decoded from the key frame at or before it
// (`seeked` is set when that skipped anything), leaving out frames nothing refers to. Every decoded
// frame is checked, and anything inconsistent falls back to the sequential read, so the frames
// returned are the same. With Seek::kKeyframe, such files give the key frames at or before the
// sampled positions, one seek and one decoded packet each; other files, and files whose packets do
// not qualify, are read exactly with a warning saying so. A frames folder is read exactly.
// `transform`, when given, is applied to each kept RGB frame as soon as it is decoded (e.g. the
// resize and crop), so a full-size frame never waits for the others: 16 full-HD frames are 100 MB.
using FrameTransform = std::function<cv::Mat(const cv::Mat& rgb)>;
VideoFrames read_frames(const std::string& path, int64_t t, Sampling sampling,
                        Seek seek = Seek::kExact, const FrameTransform& transform = {});

// Reads the frames at the given positions (any order, repeats allowed) of a video file or frames
// folder; positions past the real end are clamped to the last frame, with a warning.
// Throws InputError like read_frames, and for a negative position.
VideoFrames read_frames_at(const std::string& path, const std::vector<int64_t>& indices);

// Position of sample k at `rate` samples per second of a `fps` stream: floor(k * fps / rate).
int64_t sample_position(int64_t k, double fps, double rate);

// One frame of a fixed-rate read: sample k is the frame at position floor(k * fps / rate).
using SampleSink = std::function<void(int64_t k, int64_t position, const cv::Mat& rgb)>;

// What a fixed-rate read found.
struct StreamInfo {
  int64_t frame_count = 0;  // frames the input has
  double fps = 0;           // the stream's rate (kFramesFolderFps for a frames folder)
  int64_t samples = 0;      // calls made to the sink
  // As VideoFrames::warnings: header count wrong, damaged packets passed over, variable frame
  // rate, rotation applied.
  std::vector<std::string> warnings;
};

// Reads a video file (sequentially, from the start) or a frames folder and hands `sink` the
// frame of each sample k = 0, 1, ... at `rate` samples per second, in order, until the input
// ends. A frame taken by several samples (rate above the stream's) is passed for each. Only one
// decoded frame is held at a time, so memory does not grow with the video's length.
// Packets the decoder refuses (a damaged stretch) are passed over, as in read_frames.
// Throws InputError (missing, not a video, no decodable frames, no frame rate, a sampled frame
// that fails to decode) and UsageError for a rate <= 0; exceptions from `sink` pass through.
StreamInfo read_frames_at_rate(const std::string& path, double rate, const SampleSink& sink);

}  // namespace stam
