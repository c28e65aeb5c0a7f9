// Frames given as a .npy array (every build; the only input of a build without video): the
// reader's checks, and logits equal to the reference's for the same frames.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>

#include "pipeline/pipeline.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"
#include "util/npy.hpp"

namespace {

using stam::test::fixture_path;
using stam::test::write_file;

// The integer pattern scripts/reference_stam.py feeds the reference, as HWC uint8 frames.
std::vector<unsigned char> pattern_hwc(int64_t t, int64_t size) {
  std::vector<unsigned char> v(static_cast<size_t>(t * size * size * 3));
  size_t at = 0;
  for (int64_t ti = 0; ti < t; ++ti)
    for (int64_t h = 0; h < size; ++h)
      for (int64_t w = 0; w < size; ++w)
        for (int64_t c = 0; c < 3; ++c)
          v[at++] = static_cast<unsigned char>((ti * 37 + c * 101 + h * 7 + w * 3 + (h * w) % 11) %
                                               256);
  return v;
}

std::string npy(const std::string& descr, const std::vector<int64_t>& shape,
                const std::vector<unsigned char>& data) {
  return stam::npy_header(descr, shape) + std::string(data.begin(), data.end());
}

class FramesArray : public ::testing::Test {
 protected:
  std::string file(const std::string& name, const std::string& bytes) {
    const std::string p = dir_.file(name);
    write_file(p, bytes);
    return p;
  }
  static stam::ModelOptions tiny() {
    stam::ModelOptions o = stam::test::tiny_model_options();
    o.precision = stam::Precision::kFp32;
    return o;
  }
  static nlohmann::json expected() {
    std::ifstream in(fixture_path("tiny_stam_expected.json"));
    return nlohmann::json::parse(in);
  }

  stam::test::TempDir dir_;
};

TEST_F(FramesArray, HeaderRoundTrips) {
  const std::string path = file("a.npy", npy("|u1", {2, 3}, {1, 2, 3, 4, 5, 6}));
  const stam::NpyArray a = stam::read_npy(path);
  EXPECT_EQ(a.descr, "|u1");
  EXPECT_FALSE(a.fortran_order);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data, (std::vector<unsigned char>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(stam::npy_header("<f4", {5}).size() % 64, 0u);
  EXPECT_EQ(stam::npy_item_size("<f8"), 8);
  EXPECT_EQ(stam::npy_item_size("<U7"), 0);
}

TEST_F(FramesArray, DamagedFilesAreInputErrorsNamingTheFile) {
  const std::string good = npy("|u1", {2, 3}, {1, 2, 3, 4, 5, 6});
  struct Case {
    std::string name, bytes, says;
  };
  std::string long_header = good;
  long_header[8] = '\xff';  // header length 0xff.. past the file
  long_header[9] = '\xff';
  std::string bad_dims = npy("|u1", {1}, {7});
  bad_dims[bad_dims.find("(1,") + 1] = 'x';  // shape (x,)
  const std::vector<Case> cases = {
      {"empty.npy", "", "not a NumPy .npy file"},
      {"magic.npy", "PK\x03\x04 not numpy at all", "not a NumPy .npy file"},
      {"version.npy", std::string("\x93NUMPY\x09\x00", 8) + good.substr(8), "version 9"},
      {"header_len.npy", long_header, "more than the file holds"},
      {"cut.npy", good.substr(0, good.size() - 2), "cut off"},
      {"extra.npy", good + "xx", "the file has 8"},
      {"dtype.npy", npy("<U3", {2}, {}), "dtype '<U3'"},
      {"dict.npy", stam::npy_header("|u1", {2}).replace(10, 1, "["), "expected '{'"},
      {"key.npy", npy("|u1", {1}, {7}).replace(12, 5, "dexcr"), "unknown key 'dexcr'"},
      {"dims.npy", bad_dims, "not a whole number"},
  };
  for (const auto& c : cases) {
    const std::string path = file(c.name, c.bytes);
    try {
      stam::read_npy(path);
      ADD_FAILURE() << c.name << " was read";
    } catch (const stam::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.name << ": " << e.what();
    }
  }
}

TEST_F(FramesArray, ClassifyEqualsTheReferenceOnTheSameFrames) {
  const nlohmann::json want = expected();
  const int64_t t = want["config"]["frames"], s = want["config"]["image"];
  const std::string path = file("pattern.npy", npy("|u1", {t, s, s, 3}, pattern_hwc(t, s)));
  stam::Classifier model(tiny());
  const stam::Result r = model.classify(path);
  ASSERT_EQ(r.logits.size(), want["pattern_logits"].size());
  double num = 0, den = 0;
  for (size_t i = 0; i < r.logits.size(); ++i) {
    const double ref = want["pattern_logits"][i];
    num += (r.logits[i] - ref) * (r.logits[i] - ref);
    den += ref * ref;
  }
  EXPECT_LE(std::sqrt(num / den), 1e-5);
  EXPECT_EQ(r.frames, t);
  EXPECT_EQ(r.frame_indices.size(), static_cast<size_t>(t));
  EXPECT_EQ(r.frame_indices.back(), t - 1);
}

TEST_F(FramesArray, MoreFramesThanTheModelRunsAreSampledUniformly) {
  const nlohmann::json want = expected();
  const int64_t t = want["config"]["frames"], s = want["config"]["image"];
  // 2T frames, of which the uniform samples (odd positions) are the pattern's frames.
  const std::vector<unsigned char> pattern = pattern_hwc(t, s);
  const size_t frame = static_cast<size_t>(s * s * 3);
  std::vector<unsigned char> twice(pattern.size() * 2, 0);
  for (int64_t i = 0; i < t; ++i)
    std::memcpy(twice.data() + (2 * i + 1) * frame, pattern.data() + i * frame, frame);
  const std::string path = file("twice.npy", npy("|u1", {2 * t, s, s, 3}, twice));
  stam::Classifier model(tiny());
  const stam::Result r = model.classify(path);
  const std::string direct = file("pattern.npy", npy("|u1", {t, s, s, 3}, pattern));
  EXPECT_EQ(r.logits, model.classify(direct).logits);
  EXPECT_EQ(r.frame_indices.front(), 1);

  stam::ModelOptions reference = tiny();
  reference.sampling = stam::Sampling::kReference;
  stam::Classifier ref_model(reference);
  EXPECT_THROW(ref_model.classify(path), stam::InputError);  // no frame rate in an array
}

TEST_F(FramesArray, ArraysThatAreNotFramesAreRefused) {
  stam::Classifier model(tiny());
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"gray.npy", npy("|u1", {8, 4, 4}, std::vector<unsigned char>(128))},
           {"rgba.npy", npy("|u1", {1, 2, 2, 4}, std::vector<unsigned char>(16))},
           {"float.npy", npy("<f4", {1, 1, 1, 3}, std::vector<unsigned char>(12))}}) {
    const std::string path = file(name, bytes);
    try {
      model.classify(path);
      ADD_FAILURE() << name << " was classified";
    } catch (const stam::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("(frames, height, width, 3)"), std::string::npos)
          << e.what();
    }
  }
}

TEST_F(FramesArray, FramesOfAnotherSize) {
  const std::string path = file("small.npy", npy("|u1", {8, 100, 120, 3},
                                                 std::vector<unsigned char>(8 * 100 * 120 * 3, 9)));
  stam::Classifier model(tiny());
#if STAM_VIDEO
  // Resized and cropped by the reference transform: a flat image stays flat.
  const stam::Clip clip = model.prepare(path);
  ASSERT_EQ(clip.pixels.sizes(), (std::vector<int64_t>{8, 224, 224, 3}));
  EXPECT_EQ(clip.pixels.min().item<int>(), 9);
  EXPECT_EQ(clip.pixels.max().item<int>(), 9);
#else
  try {
    model.prepare(path);
    ADD_FAILURE() << "frames of 120x100 were taken without a resize";
  } catch (const stam::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("STAM_VIDEO=OFF"), std::string::npos) << e.what();
  }
#endif
}

#if STAM_VIDEO
// A video's clip written as an array gives the video's own logits, bit for bit.
TEST_F(FramesArray, AVideosFramesAsAnArrayGiveItsLogits) {
  stam::Classifier model(tiny());
  const std::string video = stam::test::video_path("arm_wrestling_340x256_28fps.mp4");
  const stam::Result from_video = model.classify(video);
  const stam::Clip clip = model.prepare(video);
  const auto* p = static_cast<const unsigned char*>(clip.pixels.data_ptr());
  const std::string path =
      file("clip.npy", npy("|u1", clip.pixels.sizes().vec(),
                           std::vector<unsigned char>(p, p + clip.pixels.numel())));
  EXPECT_EQ(model.classify(path).logits, from_video.logits);
}
#else
TEST_F(FramesArray, AVideoIsRefusedByABuildWithoutVideo) {
  const std::string path = file("clip.mp4", "not decoded here");
  try {
    stam::check_clip_input(path);
    ADD_FAILURE() << "a video passed the check";
  } catch (const stam::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("clip.mp4"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("without video support"), std::string::npos);
  }
}
#endif

}  // namespace
