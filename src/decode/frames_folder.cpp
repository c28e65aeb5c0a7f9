// A folder of image files taken, sorted by name, as the frames of one video: listing the images
// and reading the sampled ones.
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

#include "decode/decode.hpp"
#include "decode/detail.hpp"
#include "stam/error.hpp"
#include "util/text.hpp"

namespace fs = std::filesystem;

namespace stam {
namespace {

bool is_image_name(const fs::path& p) {
  static const std::set<std::string> kExts = {".jpg",  ".jpeg", ".png", ".bmp",
                                              ".webp", ".tif",  ".tiff"};
  return kExts.count(ascii_lower(p.extension().string())) != 0;
}

// True for a JPEG file whose data stops before its end-of-image marker (FF D9; zero bytes after
// it are padding some cameras add). libjpeg decodes such a file, greying what is missing, and
// says so only on stderr.
bool jpeg_cut_short(const fs::path& file) {
  const std::string ext = ascii_lower(file.extension().string());
  if (ext != ".jpg" && ext != ".jpeg") return false;
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  const std::streamoff size = in.tellg();
  const std::streamoff tail = std::min<std::streamoff>(size, 4096);
  std::string bytes(static_cast<size_t>(std::max<std::streamoff>(tail, 0)), '\0');
  if (tail < 2 || !in.seekg(size - tail) || !in.read(bytes.data(), tail)) return false;
  const size_t end = bytes.find_last_not_of('\0');
  return end == std::string::npos || end < 1 || bytes.compare(end - 1, 2, "\xFF\xD9") != 0;
}

}  // namespace

std::vector<fs::path> list_images(const std::string& dir) {
  std::vector<fs::path> files;
  int64_t videos = 0;  // for the error about a folder without images
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw InputError(quoted_path(dir) + ": cannot list folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw InputError(quoted_path(dir) + ": cannot list folder: " + ec.message());
    std::error_code fec;
    // Dot-files are no frames: AppleDouble "._frame_001.jpg" copies that macOS leaves on other
    // file systems, for one.
    if (!it->is_regular_file(fec) || it->path().filename().string().rfind('.', 0) == 0) continue;
    if (is_image_name(it->path()))
      files.push_back(it->path());
    else
      videos += has_extension(it->path().string(), video_extensions());
  }
  // Plain byte-wise order of the names: frame_00009.png < frame_00010.png as long as the
  // numbers are zero-padded, which is what ffmpeg and most extractors write.
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  if (files.empty()) {
    const std::string hint =
        videos == 0 ? ""
                    : "; it holds " + std::to_string(videos) +
                          " video file(s), and a folder is read as the frames of one video: name "
                          "the videos themselves, or label each with `stam batch`";
    throw InputError(quoted_path(dir) +
                     ": folder has no image files (jpg, jpeg, png, bmp, webp, tif, tiff)" + hint);
  }
  return files;
}

cv::Mat read_folder_image(const fs::path& path, const std::string& dir,
                          std::vector<std::string>& warnings) {
  const std::string file = path.string();
  cv::Mat bgr = cv::imread(file, cv::IMREAD_COLOR);
  if (bgr.empty())
    throw InputError(quoted_path(file) + ": cannot read image (frame of folder " +
                     quoted_path(dir) + ")");
  if (jpeg_cut_short(path))
    warnings.push_back(quoted_path(file) +
                       ": the JPEG data ends early (the file is cut short); its missing part "
                       "was decoded as grey");
  return bgr;
}

std::string sizes_differ_warning() {
  return "images in the folder have different sizes";
}

VideoFrames read_folder(const std::string& dir, const Chooser& choose, FrameKeeper& keep) {
  const std::vector<fs::path> files = list_images(dir);
  VideoFrames out;
  out.frame_count = static_cast<int64_t>(files.size());
  const std::vector<int64_t> indices = choose(out.frame_count, kFramesFolderFps).indices;
  std::map<int64_t, cv::Mat> frames;
  for (int64_t idx : sorted_unique(indices))
    frames[idx] = keep(read_folder_image(files[static_cast<size_t>(idx)], dir, out.warnings));
  fill_images(out, indices, frames, keep);
  if (keep.sizes_differ()) out.warnings.push_back(sizes_differ_warning());
  return out;
}

bool is_frames_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

}  // namespace stam
