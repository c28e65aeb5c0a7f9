// Preprocessing against Pillow's own pixels: fixtures from scripts/make_preprocess_fixtures.py
// (real frames decoded by PyAV, resized by PIL; PIL resizes of synthetic noise).
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "decode/decode.hpp"
#include "preprocess.hpp"
#include "test_util.hpp"

namespace stam {
namespace {

std::vector<std::vector<std::string>> manifest(const std::string& kind) {
  std::ifstream in(test::fixture_path("pre_manifest.txt"));
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    for (std::string w; ls >> w;) f.push_back(w);
    if (!f.empty() && f[0] == kind) rows.push_back(f);
  }
  return rows;
}

cv::Mat read_rgb_png(const std::string& name) {
  cv::Mat bgr = cv::imread(test::fixture_path(name), cv::IMREAD_COLOR);
  if (bgr.empty()) return bgr;
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  double m = 0;
  cv::Mat d;
  cv::absdiff(a, b, d);
  cv::minMaxLoc(d.reshape(1), nullptr, &m);
  return m;
}

// Same formula as synth_image() in the fixtures script: every byte is a hash of its flat index.
cv::Mat synth_image(int w, int h, uint64_t seed) {
  cv::Mat img(h, w, CV_8UC3);
  uint8_t* p = img.ptr<uint8_t>(0);
  for (uint64_t i = 0; i < static_cast<uint64_t>(w) * h * 3; ++i) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    p[i] = static_cast<uint8_t>(x >> 56);
  }
  return img;
}

// zlib's CRC-32 (as Python's zlib.crc32), bitwise; only used on a few hundred KB.
uint32_t crc32(const cv::Mat& img) {
  uint32_t c = 0xFFFFFFFFu;
  for (int y = 0; y < img.rows; ++y) {
    const uint8_t* p = img.ptr<uint8_t>(y);
    for (size_t i = 0; i < img.cols * img.elemSize(); ++i) {
      c ^= p[i];
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
  }
  return c ^ 0xFFFFFFFFu;
}

TEST(Preprocess, SizesFollowTorchvision) {
  EXPECT_EQ(resize_size_for_crop(224), 256);
  EXPECT_EQ(resize_size_for_crop(112), 128);
  EXPECT_EQ(resize_size_for_crop(7), 8);
  EXPECT_EQ(resize_short_side(cv::Mat(1080, 1920, CV_8UC3), 256).size(), cv::Size(455, 256));
  EXPECT_EQ(resize_short_side(cv::Mat(1920, 1080, CV_8UC3), 256).size(), cv::Size(256, 455));
  EXPECT_EQ(resize_short_side(cv::Mat(240, 320, CV_8UC3), 256).size(), cv::Size(341, 256));
  EXPECT_EQ(resize_short_side(cv::Mat(100, 100, CV_8UC3), 256).size(), cv::Size(256, 256));
}

TEST(Preprocess, UnchangedSizeIsUntouched) {
  const cv::Mat img = synth_image(300, 256, 9);
  EXPECT_EQ(max_abs_diff(resize_short_side(img, 256), img), 0);
  EXPECT_EQ(max_abs_diff(resize_bilinear_pil(img, 300, 256), img), 0);
}

TEST(Preprocess, CenterCropOffsetsRoundHalfToEven) {
  // Columns hold their own x coordinate, rows their y, so the crop's corner reveals the offset.
  auto coords = [](int w, int h) {
    cv::Mat m(h, w, CV_8UC3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(x, y, 0);
    return m;
  };
  // diff 1 -> round(0.5) = 0; diff 3 -> round(1.5) = 2; diff 5 -> round(2.5) = 2; diff 4 -> 2.
  for (auto [diff, offset] : std::vector<std::pair<int, int>>{{1, 0}, {3, 2}, {5, 2}, {4, 2}}) {
    const cv::Mat c = center_crop(coords(10 + diff, 10 + diff), 10);
    EXPECT_EQ(c.at<cv::Vec3b>(0, 0), cv::Vec3b(offset, offset, 0)) << "diff " << diff;
  }
}

TEST(Preprocess, CenterCropPadsSmallImagesWithZeros) {
  const cv::Mat img(3, 5, CV_8UC3, cv::Scalar(7, 8, 9));
  const cv::Mat c = center_crop(img, 8);  // pad w: 1 left, 2 right; h: 2 top, 3 bottom
  ASSERT_EQ(c.size(), cv::Size(8, 8));
  EXPECT_EQ(c.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(c.at<cv::Vec3b>(2, 1), cv::Vec3b(7, 8, 9));
  EXPECT_EQ(c.at<cv::Vec3b>(2, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(c.at<cv::Vec3b>(4, 5), cv::Vec3b(7, 8, 9));
  EXPECT_EQ(c.at<cv::Vec3b>(4, 6), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(c.at<cv::Vec3b>(5, 3), cv::Vec3b(0, 0, 0));
}

TEST(Preprocess, SyntheticResizesEqualPil) {
  const auto rows = manifest("synth");
  ASSERT_GE(rows.size(), 6u) << "run scripts/make_preprocess_fixtures.py";
  for (const auto& r : rows) {
    const int in_w = std::stoi(r[1]), in_h = std::stoi(r[2]);
    const int out_w = std::stoi(r[3]), out_h = std::stoi(r[4]);
    const cv::Mat ours =
        resize_bilinear_pil(synth_image(in_w, in_h, std::stoull(r[5])), out_w, out_h);
    ASSERT_EQ(ours.size(), cv::Size(out_w, out_h));
    SCOPED_TRACE(r[1] + "x" + r[2] + " -> " + r[3] + "x" + r[4]);
    if (r[6] == "png") {
      const cv::Mat pil = read_rgb_png(r[7]);
      ASSERT_FALSE(pil.empty()) << r[7];
      EXPECT_EQ(max_abs_diff(ours, pil), 0);
    } else {
      char hex[16];
      std::snprintf(hex, sizeof hex, "%08x", crc32(ours));
      EXPECT_EQ(std::string(hex), r[7]);
    }
  }
}

TEST(Preprocess, RealFramesEqualPil) {
  const auto rows = manifest("video");
  ASSERT_GE(rows.size(), 8u) << "run scripts/make_preprocess_fixtures.py";
  double worst = 0;
  for (const auto& r : rows) {
    SCOPED_TRACE(r[1] + " frame " + r[6]);
    const VideoFrames v = read_frames_at(test::video_path(r[1]), {std::stoll(r[6])});
    ASSERT_EQ(v.images.size(), 1u);
    EXPECT_EQ(v.images[0].size(), cv::Size(std::stoi(r[4]), std::stoi(r[5])));
    const cv::Mat pil = read_rgb_png(r[7]);
    ASSERT_FALSE(pil.empty()) << r[7];
    const double d = max_abs_diff(preprocess_frame(v.images[0], 224), pil);
    worst = std::max(worst, d);
    EXPECT_LE(d, 1);
  }
  std::printf("[ measured ] max abs difference vs PIL on real frames: %g\n", worst);
  EXPECT_EQ(worst, 0) << "expected bit-exact output";
}

TEST(Preprocess, CropWindowEqualsFullResizeThenCrop) {
  // preprocess_frame only computes the pixels the crop keeps; it must equal the plain route.
  for (auto [w, h, crop] : std::vector<std::tuple<int, int, int>>{{1920, 1080, 224},
                                                                  {1080, 1920, 224},
                                                                  {321, 241, 224},
                                                                  {640, 360, 112},
                                                                  {100, 90, 224},
                                                                  {256, 400, 224},
                                                                  {3840, 2160, 224},
                                                                  {17, 23, 5}}) {
    const cv::Mat img = synth_image(w, h, w * 7 + h);
    const cv::Mat slow = center_crop(resize_short_side(img, resize_size_for_crop(crop)), crop);
    EXPECT_EQ(max_abs_diff(preprocess_frame(img, crop), slow), 0) << w << "x" << h;
  }
}

TEST(Preprocess, AcceptsNonContinuousRoi) {
  const cv::Mat big = synth_image(700, 500, 11);
  const cv::Mat roi = big(cv::Rect(13, 7, 401, 333));
  ASSERT_FALSE(roi.isContinuous());
  EXPECT_EQ(max_abs_diff(preprocess_frame(roi, 224), preprocess_frame(roi.clone(), 224)), 0);
  EXPECT_EQ(
      max_abs_diff(resize_bilinear_pil(roi, 123, 45), resize_bilinear_pil(roi.clone(), 123, 45)),
      0);
}

TEST(Preprocess, RejectsWrongImageType) {
  EXPECT_THROW(preprocess_frame(cv::Mat(), 224), std::invalid_argument);
  EXPECT_THROW(preprocess_frame(cv::Mat(10, 10, CV_8UC1), 224), std::invalid_argument);
  EXPECT_THROW(resize_bilinear_pil(cv::Mat(10, 10, CV_8UC3), 0, 5), std::invalid_argument);
}

TEST(Preprocess, ThreadSafeAcrossSizes) {
  // Workers resizing different sizes at once must each get the single-threaded result.
  const std::vector<cv::Size> sizes = {{1920, 1080}, {640, 480}, {333, 777}, {1280, 720}};
  std::vector<cv::Mat> inputs, expected;
  for (const auto& s : sizes) {
    inputs.push_back(synth_image(s.width, s.height, s.area()));
    expected.push_back(preprocess_frame(inputs.back(), 224));
  }
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const size_t k = (t + i) % inputs.size();
        if (max_abs_diff(preprocess_frame(inputs[k], 224), expected[k]) != 0) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

}  // namespace
}  // namespace stam
