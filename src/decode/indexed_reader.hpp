#pragma once
// Frame-exact random access to MP4/MOV and Matroska/WebM videos, for video_file.cpp:
// libavformat lists every packet of the video stream (no decoding), libavcodec decodes from the
// key frame a target needs. Internal header.
#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "decode/decode.hpp"

namespace stam {

// True when presentation timestamps (ascending) show a variable frame rate: many intervals
// between consecutive ones, not just a few dropped frames, are off the typical (median) one.
bool variable_rate(const std::vector<int64_t>& sorted_pts);

// True when FFmpeg opens `path` as a container of streams, none of them video (audio only, say):
// for an error that says so rather than "not a video file FFmpeg can open".
bool has_no_video_stream(const std::string& path);

class IndexedReader {
 public:
  // Opens `path` and reads the timestamp and key flag of every packet of its first video stream.
  // nullptr unless positions can be told from packets alone, as a sequential decode counts them:
  // an MP4/MOV or Matroska/WebM container; every packet timestamped, none flagged corrupt or to
  // be discarded, the demuxer reaching the end cleanly; timestamps evenly spaced (constant rate:
  // nothing dropped, one frame per packet); for MP4/MOV, as many packets as the header lists.
  // `*variable` is set when the packets were read and show a variable frame rate: many intervals
  // between timestamps, not just a few dropped frames, differ from the typical one (the
  // container's timestamps are then evenly spaced no more). Every packet read and frame decoded is
  // progress for `watchdog`, which must outlive the reader; once it expires, reading stops
  // (libavformat's interrupt callback) and every call fails. When it returns nullptr,
  // `*refused` (if given) says why, e.g. "the frame rate varies".
  static std::unique_ptr<IndexedReader> open(const std::string& path, Watchdog& watchdog,
                                             bool* variable, std::string* refused = nullptr);
  ~IndexedReader();
  IndexedReader(const IndexedReader&) = delete;
  IndexedReader& operator=(const IndexedReader&) = delete;

  int64_t frame_count() const;
  // Position of the last key frame at or before `pos`.
  int64_t key_frame_at_or_before(int64_t pos) const;
  // True once a read has skipped frames by seeking.
  bool seeked() const;
  // Frames the decoder has produced so far.
  int64_t decoded() const;

  // Frame `pos` (in [0, frame_count())) as BGR, converted as OpenCV's FFmpeg backend converts
  // (before its rotation). Decodes on from the last frame read when no key frame lies between,
  // otherwise seeks to the key frame at or before `pos`; every frame decoded on the way must
  // carry the timestamp of its position. False on any mismatch or error: the reader is then in
  // an unknown state and must be dropped.
  bool read(int64_t pos, cv::Mat& bgr);
  // Declares every position read() will be asked for (each in [0, frame_count())): frames
  // elsewhere that no other frame refers to may then be left undecoded. The frames read are the
  // same. Without it, every frame on the way is decoded.
  void must_decode(const std::vector<int64_t>& positions);
  // Key frame `pos` alone: one seek and one decoded packet. Same conversion and checks.
  bool read_key_frame(int64_t pos, cv::Mat& bgr);

 private:
  struct Impl;
  explicit IndexedReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stam
