#pragma once
// Where `stam stream` reads frames from: a video file, standard input (`-`), a URL FFmpeg opens
// (rtsp://, http(s)://, tcp://, udp://, ...) or a camera (/dev/videoN or its index N, through
// V4L2). Every source but a regular file is live: read continuously, as fast as it sends.
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <string>

namespace stam::stream {

enum class SourceKind { kFile, kStdin, kUrl, kCamera };

struct SourceSpec {
  std::string name;  // as the user gave it, for messages
  SourceKind kind = SourceKind::kFile;
  // Read continuously with samples dropped when the model lags (every kind but a file, and a
  // file paced by its timestamps with --realtime).
  bool live = false;
  bool paced = false;  // a file read at its own frame rate (--realtime)
};

// What `source` names; `realtime` makes a file live and paced. Throws UsageError for "".
SourceSpec parse_source(const std::string& source, bool realtime);

// Frame rate assumed for a live source that does not state one.
constexpr double kAssumedFps = 30.0;

// One opened source, its frames one at a time.
class Source {
 public:
  // `timeout_s` bounds the open and each read (OpenCV's open and read timeouts), so a stalled
  // source ends a read instead of hanging.
  Source(SourceSpec spec, double timeout_s);
  const SourceSpec& spec() const { return spec_; }

  // Opens (again) from the start; throws InputError naming the source and the problem.
  void open();
  void close() { cap_.release(); }
  bool is_open() const { return cap_.isOpened(); }
  // The stream's frame rate; kAssumedFps (with a warning, once) when it states none.
  double fps();
  // The next frame, without decoding it into an image; false at the end, on an error or once a
  // read timed out.
  bool grab();
  // The grabbed frame as RGB; throws InputError when it does not decode.
  cv::Mat retrieve();

 private:
  SourceSpec spec_;
  double timeout_s_;
  cv::VideoCapture cap_;
  bool warned_fps_ = false;
};

}  // namespace stam::stream
