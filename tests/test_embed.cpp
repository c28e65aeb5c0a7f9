// stam embed: the .npy writer read back by Debian's numpy, the embeddings being what the head
// reads, and the CLI's .npy and JSONL outputs agreeing value for value.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "embed.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

using stam::test::fixture_path;
using stam::test::shell_quote;
using stam::test::video_path;

namespace {

stam::ModelOptions tiny_options() {
  stam::ModelOptions o;
  o.weights = fixture_path("tiny_stam.pth");  // T = 8, D = 128
  o.labels = stam::test::source_path("models/kinetics400_labels.txt");
  o.device = "cpu";
  return o;
}

// Runs a Python program with the system interpreter and numpy; returns its stdout.
stam::test::CommandResult python(const std::string& program) {
  return stam::test::run_command("/usr/bin/python3 -c " + shell_quote(program));
}

torch::Tensor tensor_of(const std::vector<float>& v) {
  return torch::tensor(at::ArrayRef<float>(v));
}

}  // namespace

TEST(Npy, NumpyReadsWhatWeWrite) {
  stam::test::TempDir dir;
  stam::write_npy(dir.file("m.npy"), {2, 3}, {0.5f, 1, 2, 3, 4, -5.25f});
  stam::write_npy(dir.file("v.npy"), {3}, {1, 2, 3});
  const auto r = python("import numpy as np\nfor f in ['m', 'v']:\n  a = np.load('" + dir.file("") +
                        "' + f + '.npy')\n  print(a.dtype, a.shape, a.tolist())");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "float32 (2, 3) [[0.5, 1.0, 2.0], [3.0, 4.0, -5.25]]\n"
            "float32 (3,) [1.0, 2.0, 3.0]\n");
}

TEST(Npy, AnUnwritablePathIsAUsageErrorNamingItAndTheSystemsReason) {
  // The reason is the system's, not a guess ("does its folder exist?" for any failure).
  stam::test::TempDir dir;
  stam::test::write_file(dir.file("file"), "");
  const std::pair<std::string, std::string> cases[] = {
      {"/nonexistent/dir/x.npy", "No such file or directory"},
      {dir.file("file") + "/x.npy", "Not a directory"},
      {dir.path().string(), "Is a directory"},
      {"/dev/full", "No space left on device"},  // opens, then the write fails
  };
  for (const auto& [path, reason] : cases) {
    try {
      stam::write_npy(path, {1}, {1});
      ADD_FAILURE() << path << ": no error";
    } catch (const stam::UsageError& e) {
      EXPECT_EQ(std::string(e.what()), "cannot write '" + path + "': " + reason);
    }
  }
}

TEST(Embed, FormatFollowsTheExtension) {
  EXPECT_EQ(stam::embed_format("a/b.npy"), stam::EmbedFormat::kNpy);
  EXPECT_EQ(stam::embed_format("b.jsonl"), stam::EmbedFormat::kJsonl);
  EXPECT_THROW(stam::embed_format("b.csv"), stam::UsageError);
  EXPECT_EQ(stam::embed_format("B.NPY"), stam::EmbedFormat::kNpy);  // any case, as batch's
  try {
    stam::embed_format("out/.npy");
    FAIL() << "a name that is only an extension accepted";
  } catch (const stam::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("give the file a name before .npy"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(stam::paths_file("out/emb.npy"), "out/emb.paths.txt");
}

TEST(Embed, EachInputIsOneLineOfThePathsFile) {
  // A newline in a file name used to split its line in two, pairing every later row of the
  // array with the wrong video; bytes that are not UTF-8 are written as in the JSON records.
  stam::test::TempDir dir;
  const std::string npy = dir.file("e.npy");
  // U+0085 and U+2028 break lines for Python's str.splitlines(); U+00E9 does not.
  stam::write_embeddings(npy,
                         {{"a\nb.mp4", {1, 2}, {}},
                          {"c\xff\t.mp4", {3, 4}, {}},
                          {"d\xc2\x85\xe2\x80\xa8\xc3\xa9.mp4", {5, 6}, {}}},
                         {2});
  EXPECT_EQ(stam::test::read_file(dir.file("e.paths.txt")),
            "a\\x0Ab.mp4\nc\\xFF\\x09.mp4\nd\\xC2\\x85\\xE2\\x80\\xA8\xc3\xa9.mp4\n");
}

TEST(Embed, WarningsTravelWithTheEmbedding) {
  // Five frames for a model of 8 (ffmpeg -f lavfi -i testsrc=size=64x48:rate=10 -frames:v 5):
  // the clip repeats frames, and the JSON lines record says so, as classify's would.
  stam::test::TempDir dir;
  const std::string video = dir.file("five.mp4");
  const auto made = stam::test::run_command(
      "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=64x48:rate=10 -frames:v 5 "
      "-c:v libx264 -pix_fmt yuv420p " +
      shell_quote(video));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  stam::Classifier c(tiny_options());
  const stam::Embedding e = stam::embed(c, video, false);
  ASSERT_EQ(e.warnings.size(), 1u);
  EXPECT_NE(e.warnings[0].find("too short for 8 samples"), std::string::npos) << e.warnings[0];
  const std::string out = dir.file("e.jsonl");
  stam::write_embeddings(out, {e, stam::embed(c, video_path("short_32frames_30fps.mp4"), false)},
                         {128});
  std::istringstream lines(stam::test::read_file(out));
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(nlohmann::json::parse(first)["warnings"], nlohmann::json(e.warnings));
  EXPECT_FALSE(nlohmann::json::parse(second).contains("warnings"));  // a clean video
}

TEST(Embed, TheClipEmbeddingIsWhatTheHeadReads) {
  stam::Classifier c(tiny_options());
  const std::string video = video_path("arm_wrestling_340x256_28fps.mp4");
  const stam::Embedding clip = stam::embed(c, video, false);
  ASSERT_EQ(clip.values.size(), 128u);
  const torch::Tensor logits = c.logits(tensor_of(clip.values).unsqueeze(0))[0];
  const stam::Result r = c.classify(video);
  EXPECT_LE(
      stam::test::relative_error(
          std::vector<double>(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel()),
          std::vector<double>(r.logits.begin(), r.logits.end())),
      1e-5);

  const stam::Embedding frames = stam::embed(c, video, true);
  ASSERT_EQ(frames.values.size(), 8u * 128u);
  const torch::Tensor again = c.encode_clips(tensor_of(frames.values).view({1, 8, 128}))[0];
  EXPECT_TRUE(torch::allclose(again, tensor_of(clip.values), 1e-5, 1e-6));
}

TEST(EmbedCli, NpyAndJsonlAgreeAndNumpyLoadsThem) {
  stam::test::TempDir dir;
  const std::string inputs = shell_quote(video_path("arm_wrestling_340x256_28fps.mp4")) + " " +
                             shell_quote(video_path("mpeg4_320x240_25fps.avi"));
  const std::string stam = shell_quote(stam::test::stam_binary()) + " embed " + inputs +
                           " --weights " + shell_quote(fixture_path("tiny_stam.pth")) +
                           " --device cpu -q";
  for (const std::string extra : {"", " --per-frame"}) {
    const std::string name = extra.empty() ? "clip" : "frames";
    for (const std::string ext : {".npy", ".jsonl"}) {
      const auto r =
          stam::test::run_command(stam + extra + " --output " + shell_quote(dir.file(name + ext)));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    const auto check = python(
        "import json, numpy as np\n"
        "d = '" +
        dir.file(name) +
        "'\n"
        "a = np.load(d + '.npy')\n"
        "rows = [json.loads(l) for l in open(d + '.jsonl')]\n"
        "paths = open(d + '.paths.txt').read().splitlines()\n"
        "assert paths == [r['input'] for r in rows], paths\n"
        "b = np.array([r['embedding'] for r in rows], dtype=np.float32)\n"
        "print(a.dtype, a.shape, np.array_equal(a, b), len(paths))");
    ASSERT_EQ(check.exit_code, 0) << check.err;
    EXPECT_EQ(check.out,
              extra.empty() ? "float32 (2, 128) True 2\n" : "float32 (2, 8, 128) True 2\n");
  }
}

TEST(EmbedCli, ABadInputIsLeftOutAndTheExitCodeSaysSo) {
  stam::test::TempDir dir;
  const std::string stam = shell_quote(stam::test::stam_binary()) + " embed --weights " +
                           shell_quote(fixture_path("tiny_stam.pth")) + " --device cpu ";
  const auto r = stam::test::run_command(stam + "/nonexistent.mp4 " +
                                         shell_quote(video_path("short_32frames_30fps.mp4")) +
                                         " --output " + shell_quote(dir.file("e.npy")));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("/nonexistent.mp4"), std::string::npos) << r.err;
  EXPECT_EQ(stam::test::read_file(dir.file("e.paths.txt")),
            video_path("short_32frames_30fps.mp4") + "\n");
  const auto bad =
      stam::test::run_command(stam + shell_quote(video_path("short_32frames_30fps.mp4")) +
                              " --output " + shell_quote(dir.file("e.txt")));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(".npy"), std::string::npos) << bad.err;
  // A missing folder is refused before the model loads, not after every input was embedded.
  const auto nodir =
      stam::test::run_command(stam + shell_quote(video_path("short_32frames_30fps.mp4")) +
                              " --output " + shell_quote(dir.file("nodir/e.npy")));
  EXPECT_EQ(nodir.exit_code, 2);
  EXPECT_NE(nodir.err.find("nodir does not exist"), std::string::npos) << nodir.err;
  EXPECT_EQ(nodir.err.find("loaded"), std::string::npos) << nodir.err;
}

TEST(EmbedCli, WhenNoInputIsEmbeddedTheOutputIsLeftAsItWas) {
  // Every input failing used to replace an existing array with an empty one (and its paths
  // file with an empty file), after loading the model for inputs that were missing.
  stam::test::TempDir dir;
  const std::string npy = dir.file("keep.npy"), paths = dir.file("keep.paths.txt");
  stam::test::write_file(npy, "three rows");
  stam::test::write_file(paths, "a.mp4\nb.mp4\nc.mp4\n");
  const std::string stam = shell_quote(stam::test::stam_binary()) + " embed --device cpu ";
  // Missing inputs are found before the model loads: these weights do not exist either, and
  // loading them would be exit 4.
  const auto missing = stam::test::run_command(stam + "--weights /nonexistent/stam.pth " +
                                               "/nonexistent.mp4 --output " + shell_quote(npy));
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("/nonexistent.mp4"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("no input could be embedded; " + npy + " was not written"),
            std::string::npos)
      << missing.err;
  // An input that fails only when decoded.
  stam::test::write_file(dir.file("broken.mp4"), "not a video");
  const auto broken = stam::test::run_command(
      stam + "--weights " + shell_quote(fixture_path("tiny_stam.pth")) + " " +
      shell_quote(dir.file("broken.mp4")) + " --output " + shell_quote(npy));
  EXPECT_EQ(broken.exit_code, 3) << broken.err;
  EXPECT_EQ(stam::test::read_file(npy), "three rows");
  EXPECT_EQ(stam::test::read_file(paths), "a.mp4\nb.mp4\nc.mp4\n");
}

TEST(EmbedCli, TopKIsRefusedWithTheReason) {
  // Embed reports no labels: -k would do nothing, and is not silently taken.
  stam::test::TempDir dir;
  const auto r =
      stam::test::run_command(shell_quote(stam::test::stam_binary()) + " embed " +
                              shell_quote(video_path("short_32frames_30fps.mp4")) + " --weights " +
                              shell_quote(fixture_path("tiny_stam.pth")) + " -k 3 --output " +
                              shell_quote(dir.file("e.npy")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("-k/--top-k does not apply to embed"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("e.npy")));
  // Nor does it name classes: a checkpoint of 5 classes embeds beside the default 400 labels,
  // and --labels is refused with the reason.
  const std::string embed = shell_quote(stam::test::stam_binary()) + " embed " +
                            shell_quote(video_path("short_32frames_30fps.mp4")) + " --weights " +
                            shell_quote(fixture_path("micro_ok.pth")) + " --output " +
                            shell_quote(dir.file("m.npy"));
  auto m = stam::test::run_command(embed);
  EXPECT_EQ(m.exit_code, 0) << m.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("m.npy")));
  m = stam::test::run_command(
      embed + " --labels " + shell_quote(stam::test::source_path("models/kinetics400_labels.txt")));
  EXPECT_EQ(m.exit_code, 2) << m.err;
  EXPECT_NE(m.err.find("--labels does not apply to embed"), std::string::npos) << m.err;
  const auto help =
      stam::test::run_command(shell_quote(stam::test::stam_binary()) + " embed --help");
  EXPECT_EQ(help.out.find("top-k"), std::string::npos) << help.out;
  // Hiding it left two blank lines before the exit codes.
  EXPECT_NE(help.out.find("\n\nExit codes:"), std::string::npos) << help.out;
  EXPECT_EQ(help.out.find("\n\n\n"), std::string::npos) << help.out;
}

// embed_each is `stam embed` without the writing: called here directly, no subprocess.
TEST(EmbedEach, BadInputsAreLeftOutAndTheShapeFollowsTheModel) {
  stam::ModelOptions options = tiny_options();
  options.with_labels = false;
  const std::string a = video_path("short_32frames_30fps.mp4");
  const auto clip = stam::embed_each(options, {video_path("no_such_video.mp4"), a}, false);
  ASSERT_EQ(clip.rows.size(), 1u);
  EXPECT_EQ(clip.rows[0].input, a);
  EXPECT_EQ(clip.worst, static_cast<int>(stam::Exit::kInput));
  stam::Classifier direct(options);
  const int64_t d = direct.config().embed_dim;
  EXPECT_EQ(clip.row_shape, std::vector<int64_t>{d});
  EXPECT_EQ(clip.rows[0].values.size(), static_cast<size_t>(d));
  EXPECT_EQ(clip.rows[0].values, stam::embed(direct, a, false).values);
  const auto frames = stam::embed_each(options, {a}, true);
  EXPECT_EQ(frames.worst, 0);
  EXPECT_EQ(frames.row_shape, (std::vector<int64_t>{direct.config().frames, d}));
  const auto none = stam::embed_each(options, {video_path("no_such_video.mp4")}, false);
  EXPECT_TRUE(none.rows.empty());
  EXPECT_TRUE(none.row_shape.empty());
}
