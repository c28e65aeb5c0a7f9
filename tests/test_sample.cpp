// Frame sampling: uniform centres of segments, and the paper's reference protocol checked
// against positions produced by real PyTorch (tests/fixtures/pre_reference_indices.txt, made by
// scripts/make_preprocess_fixtures.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "sample.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

namespace stam {
namespace {

using Idx = std::vector<int64_t>;

TEST(Sampling, ParsesNames) {
  EXPECT_EQ(parse_sampling("uniform"), Sampling::kUniform);
  EXPECT_EQ(parse_sampling("reference"), Sampling::kReference);
  EXPECT_EQ(to_string(Sampling::kUniform), "uniform");
  EXPECT_EQ(to_string(Sampling::kReference), "reference");
  try {
    parse_sampling("random");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("random"), std::string::npos);
  }
}

TEST(UniformIndices, ManyFramesTakesSegmentCentres) {
  // N = 300, T = 16: floor((2i+1) * 300 / 32).
  EXPECT_EQ(uniform_indices(300, 16),
            (Idx{9, 28, 46, 65, 84, 103, 121, 140, 159, 178, 196, 215, 234, 253, 271, 290}));
  EXPECT_EQ(uniform_indices(1000000, 2), (Idx{250000, 750000}));
}

TEST(UniformIndices, EqualCountTakesEveryFrame) {
  EXPECT_EQ(uniform_indices(16, 16), (Idx{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}));
}

TEST(UniformIndices, FewFramesRepeat) {
  EXPECT_EQ(uniform_indices(5, 16), (Idx{0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4}));
  EXPECT_EQ(uniform_indices(1, 16), Idx(16, 0));
  EXPECT_EQ(uniform_indices(1, 1), Idx{0});
  EXPECT_EQ(uniform_indices(2, 3), (Idx{0, 1, 1}));
}

TEST(UniformIndices, AlwaysInRangeAndSorted) {
  for (int64_t n = 1; n < 200; ++n) {
    for (int64_t t : {1, 3, 8, 16, 32, 64}) {
      const Idx idx = uniform_indices(n, t);
      ASSERT_EQ(static_cast<int64_t>(idx.size()), t);
      for (size_t i = 0; i < idx.size(); ++i) {
        ASSERT_GE(idx[i], 0);
        ASSERT_LT(idx[i], n);
        if (i > 0) {
          ASSERT_LE(idx[i - 1], idx[i]);
        }
      }
      if (n >= t) {  // no repeats when there are enough frames
        for (size_t i = 1; i < idx.size(); ++i) ASSERT_LT(idx[i - 1], idx[i]);
      }
    }
  }
}

TEST(UniformIndices, RejectsNonsense) {
  EXPECT_THROW(uniform_indices(0, 16), InputError);
  EXPECT_THROW(uniform_indices(10, 0), UsageError);
}

// Lines "fps T positions..." written by the fixtures script from torch.
struct RefCase {
  double fps;
  int64_t t;
  Idx positions;
};

std::vector<RefCase> load_reference_cases() {
  std::ifstream in(test::fixture_path("pre_reference_indices.txt"));
  std::vector<RefCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string fps_text;
    RefCase c;
    ls >> fps_text >> c.t;
    c.fps = std::strtod(fps_text.c_str(), nullptr);  // repr() round-trips exactly
    for (int64_t p; ls >> p;) c.positions.push_back(p);
    cases.push_back(c);
  }
  return cases;
}

TEST(ReferenceIndices, MatchesPyTorch) {
  const auto cases = load_reference_cases();
  ASSERT_GE(cases.size(), 27u) << "fixture missing: run scripts/make_preprocess_fixtures.py";
  for (const auto& c : cases) {
    EXPECT_EQ(reference_indices(100000, c.fps, c.t), c.positions)
        << "fps " << c.fps << " T " << c.t;
  }
}

TEST(ReferenceIndices, SpotChecksFromTheSpec) {
  // The spec's examples: 30 fps -> 0, 18, 37, 56, ..., 281; 25 fps -> 0, 15, 31, ..., 234.
  const Idx r30 = reference_indices(300, 30.0, 16);
  EXPECT_EQ(Idx(r30.begin(), r30.begin() + 4), (Idx{0, 18, 37, 56}));
  EXPECT_EQ(r30.back(), 281);
  const Idx r25 = reference_indices(250, 25.0, 16);
  EXPECT_EQ(Idx(r25.begin(), r25.begin() + 3), (Idx{0, 15, 31}));
  EXPECT_EQ(r25.back(), 234);
}

TEST(ReferenceIndices, Float32ProductMatters) {
  // At 120/11 fps, T=16 some float64 products land on the other side of an integer; the
  // fixtures (from torch) include this rate, so here only check that the two really differ.
  const double fps = 120.0 / 11.0;
  const double step = fps / 1.6;
  bool differs = false;
  const Idx ref = reference_indices(100000, fps, 16);
  for (int k = 0; k < 16; ++k) differs |= static_cast<int64_t>(k * step) != ref[k];
  EXPECT_TRUE(differs);
}

TEST(ReferenceIndices, ShortVideoClampsInsteadOfDropping) {
  // 32 frames at 30 fps: positions past 31 become 31.
  const Idx r = reference_indices(32, 30.0, 16);
  EXPECT_EQ(Idx(r.begin(), r.begin() + 3), (Idx{0, 18, 31}));
  for (size_t i = 2; i < r.size(); ++i) EXPECT_EQ(r[i], 31);
  EXPECT_EQ(reference_indices(1, 30.0, 16), Idx(16, 0));
}

TEST(ReferenceIndices, RejectsMissingRate) {
  EXPECT_THROW(reference_indices(100, 0.0, 16), InputError);
  EXPECT_THROW(reference_indices(100, -1.0, 16), InputError);
}

TEST(SampleIndices, Dispatches) {
  EXPECT_EQ(sample_indices(Sampling::kUniform, 300, 30.0, 16), uniform_indices(300, 16));
  EXPECT_EQ(sample_indices(Sampling::kReference, 300, 30.0, 16), reference_indices(300, 30.0, 16));
}

}  // namespace
}  // namespace stam
