// Random access through the container's packets. A position is the rank of a packet's
// presentation timestamp among all of the stream's: that is the decoder's output order, as long
// as every packet yields exactly one frame, which the checks in open() and the timestamp of
// every decoded frame make sure of.
#include "indexed_reader.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <vector>

namespace stam {
namespace {

// A timestamp is "on the grid" when it is within this fraction of a frame interval of
// first + position x interval. Millisecond timestamps (Matroska) of 30 or 60 fps video stay
// within 0.03; a dropped frame or a variable rate moves later frames by whole intervals.
constexpr double kGridTolerance = 0.1;

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A variable frame rate, as opposed to a few dropped frames (which real, clean files have: a
// trimmed last frame, a camera's hiccup): more than this fraction of the intervals between
// consecutive timestamps are off the typical (median) interval by kGridTolerance or more.
constexpr double kVariableIntervals = 0.2;

// libavformat polls this during every blocking operation; non-zero aborts it.
int interrupt_when_expired(void* watchdog) {
  return static_cast<const Watchdog*>(watchdog)->expired() ? 1 : 0;
}

}  // namespace

bool variable_rate(const std::vector<int64_t>& sorted_pts) {
  std::vector<int64_t> steps;
  for (size_t i = 1; i < sorted_pts.size(); ++i) steps.push_back(sorted_pts[i] - sorted_pts[i - 1]);
  if (steps.empty()) return false;
  std::vector<int64_t> order = steps;
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(order.size() / 2),
                   order.end());
  const auto median = static_cast<double>(order[order.size() / 2]);
  const auto off = std::count_if(steps.begin(), steps.end(), [&](int64_t s) {
    return std::abs(static_cast<double>(s) - median) >= kGridTolerance * median;
  });
  return static_cast<double>(off) > kVariableIntervals * static_cast<double>(steps.size());
}

struct IndexedReader::Impl {
  std::unique_ptr<AVFormatContext, FormatCloser> format;
  std::unique_ptr<AVCodecContext, CodecFreer> codec;
  std::unique_ptr<AVPacket, PacketFreer> packet{av_packet_alloc()};
  std::unique_ptr<AVFrame, FrameFreer> frame{av_frame_alloc()};
  std::unique_ptr<AVFrame, FrameFreer> bgr{av_frame_alloc()};
  std::unique_ptr<SwsContext, SwsFreer> sws;
  Watchdog* watchdog = nullptr;
  int stream = -1;
  bool variable = false;      // scan() found a variable frame rate
  std::string refused;        // why positions cannot be told from the packets, once known
  std::vector<int64_t> pts;   // presentation timestamp of each position, ascending
  std::vector<int64_t> keys;  // positions of the key frames, ascending, starting with 0

  // Decoder state: its next frame is position `next` (-1: unknown, seek first). Frames stamped
  // before `skip_below` are leftovers of a seek that landed early and are not counted.
  int64_t next = -1;
  int64_t skip_below = 0;
  bool draining = false;  // the end of the stream was sent to the decoder
  bool seeked = false;
  // Positions read() will ask for (must_decode()); empty: every frame is decoded.
  std::vector<bool> wanted;
  int64_t decoded = 0;  // frames the decoder has produced

  // True when the decoder may drop position `i` if no other frame refers to it.
  bool may_skip(int64_t i) const { return !wanted.empty() && !wanted[static_cast<size_t>(i)]; }

  // The position a packet's timestamp stands for, or -1.
  int64_t position_of(int64_t ts) const {
    const auto it = std::lower_bound(pts.begin(), pts.end(), ts);
    return it != pts.end() && *it == ts ? static_cast<int64_t>(it - pts.begin()) : -1;
  }

  // False with `why` as the reason refused.
  bool refuse(std::string why) {
    refused = std::move(why);
    return false;
  }

  // Reads every packet of the stream; false (and `refused` set) when positions cannot be told
  // from them.
  bool scan() {
    struct Entry {
      int64_t pts;
      bool key;
    };
    std::vector<Entry> entries;
    int ret = 0;
    while ((ret = av_read_frame(format.get(), packet.get())) >= 0) {
      watchdog->progress();
      const AVPacket& p = *packet;
      const char* unusable = nullptr;
      if (p.stream_index == stream) {
        unusable = p.pts == AV_NOPTS_VALUE                ? "a packet has no timestamp"
                   : (p.flags & AV_PKT_FLAG_CORRUPT) != 0 ? "a packet is flagged corrupt"
                   : (p.flags & AV_PKT_FLAG_DISCARD) != 0 ? "an edit list hides some frames"
                                                          : nullptr;
        entries.push_back({p.pts, (p.flags & AV_PKT_FLAG_KEY) != 0});
      }
      av_packet_unref(packet.get());
      if (unusable != nullptr) return refuse(unusable);
    }
    const int64_t n = static_cast<int64_t>(entries.size());
    const int64_t listed = format->streams[stream]->nb_frames;  // MP4's sample count; else 0
    if (ret != AVERROR_EOF)
      return refuse("the container could not be read to its end (cut short or damaged?)");
    if (n < 2) return refuse("fewer than two frames");
    if (listed > 0 && listed != n)
      return refuse("the header lists " + std::to_string(listed) + " frames, the file holds " +
                    std::to_string(n));

    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.pts < b.pts; });
    std::vector<int64_t> sorted;
    for (const Entry& e : entries) sorted.push_back(e.pts);
    variable = variable_rate(sorted);
    const double step =
        static_cast<double>(entries.back().pts - entries.front().pts) / static_cast<double>(n - 1);
    if (!(step > 0)) return refuse("the frame timestamps do not advance");
    for (int64_t i = 0; i < n; ++i) {
      const Entry& e = entries[static_cast<size_t>(i)];
      const double off =
          static_cast<double>(e.pts - entries.front().pts) - step * static_cast<double>(i);
      if (std::abs(off) >= kGridTolerance * step)
        return refuse(variable ? "the frame rate varies"
                               : "the frame timestamps are not evenly spaced (a frame dropped or "
                                 "repeated)");
      pts.push_back(e.pts);
      if (e.key) keys.push_back(i);
    }
    if (keys.empty() || keys.front() != 0) return refuse("the first frame is no key frame");
    return true;
  }

  bool open_decoder() {
    const AVCodecParameters* par = format->streams[stream]->codecpar;
    const AVCodec* decoder = avcodec_find_decoder(par->codec_id);
    if (decoder == nullptr) return false;
    codec.reset(avcodec_alloc_context3(decoder));
    return codec && avcodec_parameters_to_context(codec.get(), par) >= 0 &&
           avcodec_open2(codec.get(), decoder, nullptr) >= 0;
  }

  // Positions the demuxer at (or before) key frame `k` and empties the decoder.
  bool seek_to(int64_t k) {
    const int64_t ts = pts[static_cast<size_t>(k)];
    if (av_seek_frame(format.get(), stream, ts, AVSEEK_FLAG_BACKWARD) < 0) return false;
    avcodec_flush_buffers(codec.get());
    next = k;
    skip_below = ts;
    draining = false;
    return true;
  }

  // Reads the stream's next packet into `packet`; false at the end or on error.
  bool next_packet() {
    for (;;) {
      av_packet_unref(packet.get());
      if (av_read_frame(format.get(), packet.get()) < 0) return false;
      watchdog->progress();
      if (packet->stream_index == stream) return true;
    }
  }

  // Feeds the decoder one more packet, or the end of the stream.
  bool feed() {
    if (!next_packet()) {
      draining = true;
      return avcodec_send_packet(codec.get(), nullptr) >= 0;
    }
    // A frame no one wants and nothing refers to need not be decoded at all: about half the
    // frames of H.264 with B-frames, a quarter of the decoding time.
    const int64_t pos = position_of(packet->pts);
    codec->skip_frame = pos >= 0 && may_skip(pos) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    return avcodec_send_packet(codec.get(), packet.get()) >= 0;
  }

  // The decoder concealed errors in the current frame (or marked it corrupt): a packet was
  // damaged, and a sequential read counts such files differently, so the caller falls back to it.
  bool damaged() const {
    return frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT) != 0;
  }

  // Takes decoded frames up to position `pos`, checking each one's timestamp, and converts
  // that one.
  bool decode_to(int64_t pos, cv::Mat& out) {
    const int64_t n = static_cast<int64_t>(pts.size());
    for (;;) {
      if (watchdog->expired()) return false;
      const int ret = avcodec_receive_frame(codec.get(), frame.get());
      if (ret == AVERROR(EAGAIN)) {
        if (draining || !feed()) return false;
        continue;
      }
      if (ret < 0) return false;
      watchdog->progress();
      ++decoded;
      const int64_t ts = frame->pts;
      if (ts == AV_NOPTS_VALUE) return false;
      // (Leading frames of an open GOP, shown before the key frame a seek landed on, lack their
      // references and are concealed: they are dropped here, before the damage check.)
      if (ts < skip_below) continue;
      if (damaged()) return false;
      // Frames the decoder was allowed to drop may be missing: step over them, never over a
      // wanted one.
      while (next < n && ts != pts[static_cast<size_t>(next)] && may_skip(next)) ++next;
      if (next >= n || ts != pts[static_cast<size_t>(next)]) return false;
      if (next++ == pos) return convert(out);
    }
  }

  // The current frame to BGR exactly as OpenCV 4.6's FFmpeg backend does it: swscale over the
  // decoder's coded size with SWS_BICUBIC (an unscaled conversion; the size and flags choose
  // the same code path, so the same pixels), into a 32-byte aligned buffer, then the visible
  // part.
  bool convert(cv::Mat& out) {
    const AVCodecParameters* par = format->streams[stream]->codecpar;
    const int w = codec->coded_width, h = codec->coded_height;
    if (frame->width != par->width || frame->height != par->height || w < frame->width ||
        h < frame->height) {
      return false;
    }
    sws.reset(sws_getCachedContext(sws.release(), w, h, static_cast<AVPixelFormat>(frame->format),
                                   w, h, AV_PIX_FMT_BGR24, SWS_BICUBIC, nullptr, nullptr, nullptr));
    if (!sws) return false;
    if (bgr->width != w || bgr->height != h) {
      av_frame_unref(bgr.get());
      bgr->format = AV_PIX_FMT_BGR24;
      bgr->width = w;
      bgr->height = h;
      if (av_frame_get_buffer(bgr.get(), 32) < 0) return false;
    }
    sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, bgr->data, bgr->linesize);
    out = cv::Mat(frame->height, frame->width, CV_8UC3, bgr->data[0],
                  static_cast<size_t>(bgr->linesize[0]))
              .clone();
    return true;
  }
};

IndexedReader::IndexedReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
bool has_no_video_stream(const std::string& path) {
  AVFormatContext* format = nullptr;
  if (avformat_open_input(&format, path.c_str(), nullptr, nullptr) < 0) return false;
  const std::unique_ptr<AVFormatContext, FormatCloser> owned(format);
  if (format->nb_streams == 0) return false;
  for (unsigned i = 0; i < format->nb_streams; ++i)
    if (format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) return false;
  return true;
}

IndexedReader::~IndexedReader() = default;

std::unique_ptr<IndexedReader> IndexedReader::open(const std::string& path, Watchdog& watchdog,
                                                   bool* variable, std::string* refused) {
  std::string ignored;
  std::string& why = refused != nullptr ? *refused : ignored;
  auto m = std::make_unique<Impl>();
  m->watchdog = &watchdog;
  why = "FFmpeg could not open it";
  if (!m->packet || !m->frame || !m->bgr) return nullptr;
  AVFormatContext* format = avformat_alloc_context();
  if (format == nullptr) return nullptr;
  format->interrupt_callback = {interrupt_when_expired, &watchdog};
  // On failure avformat_open_input frees the context and sets it to null.
  if (avformat_open_input(&format, path.c_str(), nullptr, nullptr) < 0) return nullptr;
  m->format.reset(format);
  // Containers whose packets carry presentation timestamps and whose index libavformat seeks
  // by (AVI, for one, stamps packets in decode order).
  const std::string_view name = format->iformat->name;
  why = "not an MP4/MOV/Matroska/WebM file";
  if (!starts_with(name, "mov,") && !starts_with(name, "matroska,")) return nullptr;
  // OpenCV decodes the first video stream: so do we.
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (m->stream < 0 && format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
      m->stream = static_cast<int>(i);
    } else {
      format->streams[i]->discard = AVDISCARD_ALL;
    }
  }
  why = "no video stream";
  if (m->stream < 0 || (format->streams[m->stream]->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
    return nullptr;
  }
  const bool scanned = m->scan();
  *variable = m->variable;
  if (!scanned) {
    why = watchdog.expired() ? "reading its packets stalled" : m->refused;
    return nullptr;
  }
  why = "FFmpeg has no decoder for its video, or cannot seek in it";
  if (!m->open_decoder() || !m->seek_to(0)) return nullptr;
  why.clear();
  return std::unique_ptr<IndexedReader>(new IndexedReader(std::move(m)));
}

int64_t IndexedReader::frame_count() const {
  return static_cast<int64_t>(impl_->pts.size());
}

int64_t IndexedReader::key_frame_at_or_before(int64_t pos) const {
  const auto& keys = impl_->keys;
  return *std::prev(std::upper_bound(keys.begin(), keys.end(), pos));
}

int64_t IndexedReader::decoded() const {
  return impl_->decoded;
}

bool IndexedReader::seeked() const {
  return impl_->seeked;
}

void IndexedReader::must_decode(const std::vector<int64_t>& positions) {
  Impl& m = *impl_;
  m.wanted.assign(m.pts.size(), false);
  for (int64_t p : positions) m.wanted.at(static_cast<size_t>(p)) = true;
}

bool IndexedReader::read(int64_t pos, cv::Mat& bgr) {
  Impl& m = *impl_;
  const int64_t key = key_frame_at_or_before(pos);
  if (m.next < 0 || pos < m.next || key > m.next) {
    if (!m.seek_to(key)) return false;
    m.seeked = true;
  }
  return m.decode_to(pos, bgr);
}

bool IndexedReader::read_key_frame(int64_t pos, cv::Mat& bgr) {
  Impl& m = *impl_;
  if (m.watchdog->expired() || !m.seek_to(pos)) return false;
  m.seeked |= pos > 0;
  m.next = -1;  // the decoder is drained below: the next read seeks
  // Packets before the key frame (the seek may land on an earlier one) are passed undecoded.
  const int64_t ts = m.pts[static_cast<size_t>(pos)];
  do {
    if (!m.next_packet()) return false;
    if (m.packet->pts > ts) return false;
  } while (m.packet->pts != ts);
  m.codec->skip_frame = AVDISCARD_DEFAULT;
  if (avcodec_send_packet(m.codec.get(), m.packet.get()) < 0 ||
      avcodec_send_packet(m.codec.get(), nullptr) < 0 ||
      avcodec_receive_frame(m.codec.get(), m.frame.get()) < 0 || m.damaged() ||
      m.frame->pts != ts) {
    return false;
  }
  ++m.decoded;
  return m.convert(bgr);
}

}  // namespace stam
