// The `stam` executable as a user runs it: output formats, exit codes, error messages.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cpu.hpp"

#include "device.hpp"
#include "test_util.hpp"

using stam::test::contains;
using stam::test::fixture_path;
using stam::test::run_command;
using stam::test::shell_quote;
using stam::test::stam_cmd;
using stam::test::video_path;

namespace {

std::string tiny() {
  return "--weights " + shell_quote(fixture_path("tiny_stam.pth"));
}

std::string video(const std::string& name) {
  return shell_quote(video_path(name));
}

// One JSON value per line, as `classify --format json` prints them when not at a terminal.
std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::istringstream lines(text);
  std::vector<nlohmann::json> values;
  for (std::string line; std::getline(lines, line);) values.push_back(nlohmann::json::parse(line));
  return values;
}

}  // namespace

TEST(Cli, ClassifyJsonHasTheDocumentedFields) {
  auto r = run_command(stam_cmd("classify " + video("arm_wrestling_340x256_28fps.mp4") + " " +
                                tiny() + " --format json --logits --top-k 3 -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(contains(j["input"].get<std::string>(), "arm_wrestling"));
  EXPECT_EQ(j["frames"], 8);
  EXPECT_EQ(j["frame_indices"].size(), 8u);
  ASSERT_EQ(j["top_k"].size(), 3u);
  for (const auto& p : j["top_k"]) {
    EXPECT_TRUE(p.contains("index") && p.contains("label") && p.contains("score"));
    EXPECT_GT(p["score"].get<double>(), 0.0);
    EXPECT_LE(p["score"].get<double>(), 1.0);
  }
  for (const char* k : {"decode", "preprocess", "spatial", "temporal", "total"})
    EXPECT_TRUE(j["timings_ms"].contains(k)) << k;
  EXPECT_EQ(j["device"], "cpu");
  // --precision auto: fp32 without bf16 instructions, else the faster of the two, measured.
  if (stam::cpu_info().has("avx512_bf16") || stam::cpu_info().has("amx_bf16"))
    EXPECT_TRUE(j["precision"] == "fp32" || j["precision"] == "bf16") << j["precision"];
  else
    EXPECT_EQ(j["precision"], "fp32");
  EXPECT_EQ(j["logits"].size(), 400u);
  EXPECT_TRUE(r.err.empty()) << "-q must silence logs: " << r.err;
}

TEST(Cli, ClassifySeveralInputsGivesOneResultEachAndTheWorstExitCode) {
  const std::string inputs = video("short_32frames_30fps.mp4") + " /nonexistent/clip.mp4 " +
                             video("mpeg4_320x240_25fps.avi");
  auto json = run_command(stam_cmd("classify " + inputs + " " + tiny() + " --format json"));
  EXPECT_EQ(json.exit_code, 3) << json.err;
  const std::vector<nlohmann::json> objects = json_lines(json.out);
  ASSERT_EQ(objects.size(), 3u) << json.out;
  EXPECT_TRUE(contains(objects[0]["input"], "short_32frames"));
  EXPECT_EQ(objects[1]["input"], "/nonexistent/clip.mp4");
  EXPECT_TRUE(objects[1].contains("error"));
  EXPECT_TRUE(contains(objects[2]["input"], "mpeg4"));
  EXPECT_EQ(objects[2]["top_k"].size(), 5u);
  size_t loads = 0;
  for (size_t at = 0; (at = json.err.find("loaded", at)) != std::string::npos; ++at) ++loads;
  EXPECT_EQ(loads, 1u) << "the model loads once: " << json.err;

  auto text = run_command(stam_cmd("classify " + inputs + " " + tiny()));
  EXPECT_EQ(text.exit_code, 3) << text.err;
  size_t tables = 0;
  for (size_t at = 0; (at = text.out.find("  rank", at)) != std::string::npos; ++at) ++tables;
  EXPECT_EQ(tables, 2u) << text.out;
  EXPECT_TRUE(contains(text.err, "/nonexistent/clip.mp4")) << text.err;
}

TEST(Cli, ClassifyDecodesAheadButPrintsInInputOrderWithEachFailureInItsPlace) {
  // The second input passes the checks made before the model loads and fails only when decoded
  // (ahead of the model, on the prefetch thread): its error must still come second.
  stam::test::TempDir dir;
  const std::string fake = dir.file("not_a_video.mp4");
  std::ofstream(fake) << "not a video\n";
  const std::vector<std::string> good = {video_path("arm_wrestling_340x256_28fps.mp4"),
                                         video_path("mpeg4_320x240_25fps.avi"),
                                         video_path("short_32frames_30fps.mp4")};
  const std::string inputs = shell_quote(good[0]) + " " + shell_quote(fake) + " " +
                             shell_quote(good[1]) + " " + shell_quote(good[2]);
  const auto without_timings = [](nlohmann::json j) {
    j.erase("timings_ms");
    return j;
  };

  auto json = run_command(stam_cmd("classify " + inputs + " " + tiny() + " --format json"));
  EXPECT_EQ(json.exit_code, 3) << json.err;
  const std::vector<nlohmann::json> objects = json_lines(json.out);
  ASSERT_EQ(objects.size(), 4u) << json.out;
  EXPECT_EQ(objects[1]["input"], fake);
  EXPECT_TRUE(contains(objects[1].value("error", ""), fake)) << objects[1];
  EXPECT_TRUE(contains(json.err, fake)) << json.err;
  // Each result is the one that input gets alone, timings aside.
  const std::vector<size_t> at = {0, 2, 3};
  for (size_t k = 0; k < good.size(); ++k) {
    auto alone =
        run_command(stam_cmd("classify " + shell_quote(good[k]) + " " + tiny() + " --format json"));
    ASSERT_EQ(alone.exit_code, 0) << alone.err;
    EXPECT_EQ(without_timings(objects[at[k]]), without_timings(nlohmann::json::parse(alone.out)))
        << good[k];
  }

  auto text = run_command(stam_cmd("classify " + inputs + " " + tiny()));
  EXPECT_EQ(text.exit_code, 3) << text.err;
  EXPECT_FALSE(contains(text.out, fake)) << "a failure goes to stderr: " << text.out;
  size_t previous = 0;
  for (const auto& g : good) {
    const size_t pos = text.out.find(g + ": ");
    ASSERT_NE(pos, std::string::npos) << g << " missing: " << text.out;
    EXPECT_GE(pos, previous) << g << " out of order: " << text.out;
    previous = pos;
  }
}

TEST(Cli, JsonKeysInTheDocumentedOrderTimingsInTenthsOneLineWhenPiped) {
  auto r = run_command(stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny() +
                                " --format json -k 2 -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one compact line: " << r.out;
  EXPECT_EQ(r.out.rfind("{\"input\":", 0), 0u) << r.out;
  const auto j = nlohmann::ordered_json::parse(r.out);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"input", "frames", "frame_indices", "top_k",
                                            "timings_ms", "device", "precision"}));
  std::vector<std::string> timing_keys, top_keys;
  for (const auto& [k, v] : j["timings_ms"].items()) {
    timing_keys.push_back(k);
    const double tenths = v.get<double>() * 10;
    EXPECT_NEAR(tenths, std::round(tenths), 1e-6) << k << " " << v;
  }
  EXPECT_EQ(timing_keys,
            (std::vector<std::string>{"decode", "preprocess", "spatial", "temporal", "total"}));
  for (const auto& [k, v] : j["top_k"][0].items()) top_keys.push_back(k);
  EXPECT_EQ(top_keys, (std::vector<std::string>{"index", "label", "score"}));
}

TEST(Cli, JsonIsIndentedAtATerminal) {
  // script(1) gives the command a pseudo-terminal as stdout.
  auto r = run_command("script -qec " +
                       shell_quote(stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " +
                                            tiny() + " --format json -q")) +
                       " /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "{\r\n  \"input\": ")) << r.out;
}

TEST(Cli, TextSaysOneFrameAndShowsTheModelLoadTime) {
  auto r = run_command(
      stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny() + " --frames 1 -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, ": 1 frame, index ")) << r.out;
  EXPECT_TRUE(contains(r.out, "timings: model load ")) << r.out;
}

TEST(Cli, ClassifyTextShowsTableAndTimings) {
  auto r = run_command(stam_cmd("classify " + video("mpeg4_320x240_25fps.avi") + " " + tiny()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "rank")) << r.out;
  EXPECT_TRUE(contains(r.out, "| decode ")) << r.out;
  EXPECT_TRUE(contains(r.err, "loaded")) << "logs go to stderr: " << r.err;
}

TEST(Cli, FramesFolderClassifies) {
  stam::test::TempDir dir;
  for (int i = 0; i < 12; ++i) {
    cv::Mat img(240, 320, CV_8UC3, cv::Scalar(i * 20, 255 - i * 20, (i * 57) % 256));
    char name[32];
    std::snprintf(name, sizeof name, "frame_%03d.png", i);
    ASSERT_TRUE(cv::imwrite(dir.file(name), img));
  }
  auto r = run_command(stam_cmd("classify " + shell_quote(dir.path().string()) + " " + tiny() +
                                " --format json -q"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["frame_indices"], nlohmann::json({0, 2, 3, 5, 6, 8, 9, 11}));
}

TEST(Cli, FramesOtherThanTrainedWarnAndRun) {
  auto r = run_command(stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny() +
                                " --frames 4 --format json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["frame_indices"].size(), 4u);
  EXPECT_TRUE(contains(r.err, "resampling")) << r.err;
}

// More threads than cores only makes the model wait on itself: it runs, and says so.
TEST(Cli, ThreadsBeyondTheCoresAreAWarning) {
  const int over = stam::usable_cpu_cores() + 1;
  auto r = run_command(stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny() +
                                " -t " + std::to_string(over)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "--threads " + std::to_string(over) + " on " +
                                  std::to_string(over - 1) + " usable core"))
      << r.err;
  r = run_command(stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny() + " -t " +
                           std::to_string(over - 1)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "usable core")) << r.err;
}

// A file name is data: one with a newline or a terminal escape sequence cannot break a log line
// or drive the terminal. Messages spell such characters as records do (\xHH).
TEST(Cli, ControlCharactersInNamesAreEscapedInMessages) {
  stam::test::TempDir dir;
  const std::string name = dir.file("bad\nname\x1b]0;x\x07.mp4");
  std::ofstream(name) << "not a video";
  auto r = run_command(stam_cmd("classify " + shell_quote(name) + " " + tiny()));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "bad\\x0Aname\\x1B]0;x\\x07.mp4")) << r.err;
  EXPECT_FALSE(contains(r.err, "\x1b")) << "no raw escape character on stderr";
  EXPECT_FALSE(contains(r.err, "bad\nname")) << r.err;
}

TEST(Cli, MissingInputIsAnInputError) {
  auto r = run_command(stam_cmd("classify /nonexistent/clip.mp4 " + tiny()));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.err, "/nonexistent/clip.mp4")) << r.err;
}

TEST(Cli, NonVideoIsAnInputError) {
  stam::test::TempDir dir;
  std::ofstream(dir.file("notes.mp4")) << "this is not a video\n";
  auto r = run_command(stam_cmd("classify " + shell_quote(dir.file("notes.mp4")) + " " + tiny()));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.err, "notes.mp4")) << r.err;
}

TEST(Cli, EmptyFolderIsAnInputError) {
  stam::test::TempDir dir;
  auto r = run_command(stam_cmd("classify " + shell_quote(dir.path().string()) + " " + tiny()));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.err, dir.path().string())) << r.err;
}

TEST(Cli, WeightsErrorsAreModelErrors) {
  auto missing = run_command(stam_cmd("classify " + video("short_32frames_30fps.mp4") +
                                      " --weights /nonexistent/stam_16.pth"));
  EXPECT_EQ(missing.exit_code, 4);
  EXPECT_TRUE(contains(missing.err, "/nonexistent/stam_16.pth")) << missing.err;

  auto shape =
      run_command(stam_cmd("classify " + video("short_32frames_30fps.mp4") + " --weights " +
                           shell_quote(fixture_path("micro_badshape.pth")) + " --labels " +
                           shell_quote(fixture_path("micro_labels.txt"))));
  EXPECT_EQ(shape.exit_code, 4);
  EXPECT_TRUE(contains(shape.err, "blocks.0.mlp.fc2.weight")) << shape.err;

  auto key =
      run_command(stam_cmd("info --weights " + shell_quote(fixture_path("micro_missing.pth"))));
  EXPECT_EQ(key.exit_code, 4);
  EXPECT_TRUE(contains(key.err, "blocks.0.attn.proj.bias")) << key.err;
}

TEST(Cli, DefaultWeightsMissingSaysHowToDownload) {
  stam::test::TempDir empty;
  auto r = run_command("STAM_MODELS_DIR=" + shell_quote(empty.path().string()) + " " +
                       stam_cmd("classify " + video("short_32frames_30fps.mp4")));
  // The source tree's models/ is searched too: the check holds where no stam_16.pth was downloaded.
  if (!std::filesystem::exists(stam::test::source_path("models/stam_16.pth"))) {
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_TRUE(contains(r.err, "download_models.sh")) << r.err;
  }
}

TEST(Cli, UsageErrorsExitWith2) {
  EXPECT_EQ(run_command(stam_cmd("classify")).exit_code, 2);
  EXPECT_EQ(run_command(stam_cmd("classify x.mp4 --top-k zero")).exit_code, 2);
  EXPECT_EQ(run_command(stam_cmd("classify x.mp4 --precision fp8")).exit_code, 2);
  EXPECT_EQ(run_command(stam_cmd("frobnicate")).exit_code, 2);
}

TEST(Cli, CountsThatAreNotNumbersAndEmptyPathsAreNamedAsSuch) {
  auto word = run_command(stam_cmd("classify x.mp4 --top-k abc"));
  EXPECT_EQ(word.exit_code, 2);
  EXPECT_TRUE(contains(word.err, "--top-k: 'abc' is not a whole number (expected 1 to 100000)"))
      << word.err;
  auto big = run_command(stam_cmd("bench --threads 2000"));
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_TRUE(contains(big.err, "--threads: 2000 is out of range (expected 0 to 1024)")) << big.err;
  auto fraction = run_command(stam_cmd("batch x -o o.jsonl --frames 8.5"));
  EXPECT_EQ(fraction.exit_code, 2);
  EXPECT_TRUE(contains(fraction.err, "'8.5' is not a whole number")) << fraction.err;

  // "" used to mean the default checkpoint (bench: random weights), silently.
  for (const char* args : {"classify x.mp4 -w ''", "classify x.mp4 --labels ''", "bench -w ''",
                           "bench --video ''", "info ''"}) {
    auto r = run_command(stam_cmd(args));
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_TRUE(contains(r.err, "an empty path names no file")) << args << ": " << r.err;
  }
}

TEST(Cli, MistypedNamesGetADidYouMeanHint) {
  auto command = run_command(stam_cmd("clasify x.mp4"));
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_TRUE(contains(command.err, "unknown command 'clasify'; did you mean 'classify'?"))
      << command.err;

  // The bare number after the mistyped option must not be explained as an input named "8".
  auto option = run_command(
      stam_cmd("classify --frame 8 " + video("short_32frames_30fps.mp4") + " " + tiny()));
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_TRUE(contains(option.err, "unknown option '--frame'; did you mean '--frames'?"))
      << option.err;

  auto batch = run_command(stam_cmd("batch x -o o.jsonl --recursiv"));
  EXPECT_EQ(batch.exit_code, 2);
  EXPECT_TRUE(contains(batch.err, "did you mean '--recursive'?")) << batch.err;

  auto far = run_command(stam_cmd("frobnicate"));
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_TRUE(contains(far.err, "commands: classify, info, batch")) << far.err;
}

// Results written to a full disk or a closed stdout were lost with exit 0 and no word.
TEST(Cli, AFailedWriteToStdoutIsAnErrorNotSilence) {
  const std::string classify =
      "classify " + video("short_32frames_30fps.mp4") + " " + tiny() + " -q --format json";
  for (const std::string redirect : {" > /dev/full", " >&-"}) {
    for (const std::string& args : {classify, std::string("--help"), std::string("--version")}) {
      auto r = run_command(stam_cmd(args) + redirect);
      EXPECT_EQ(r.exit_code, 2) << args << redirect << ": " << r.err;
      EXPECT_TRUE(contains(r.err, "stam: cannot write to standard output: ")) << r.err;
    }
  }
  // With stdout closed, the checkpoint opened next must not take its place: the run still
  // reads it and fails only at the write.
  auto closed = run_command(stam_cmd(classify) + " >&-");
  EXPECT_FALSE(contains(closed.err, "model")) << closed.err;
}

TEST(Cli, HelpNamesStamAndHelpIsACommandToo) {
  auto help = run_command(stam_cmd("--help"));
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out.find("Usage: stam [OPTIONS]"), help.out.find("Usage:")) << help.out;
  EXPECT_NE(help.out.find("Usage: stam [OPTIONS]"), std::string::npos) << help.out;

  auto batch = run_command(stam_cmd("help batch"));
  EXPECT_EQ(batch.exit_code, 0) << batch.err;
  EXPECT_TRUE(contains(batch.out, "--resume")) << batch.out;

  // Alone, stam shows what it does (on stderr: it is still a usage error).
  auto alone = run_command(stam_cmd(""));
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_TRUE(contains(alone.err, "Subcommands:")) << alone.err;
  EXPECT_TRUE(contains(alone.err, "classify")) << alone.err;

  auto version = run_command(stam_cmd("--version"));
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("stam ", 0), 0u) << version.out;
}

TEST(Cli, HelpListsExitCodes) {
  auto r = run_command(stam_cmd("classify --help"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "Exit codes")) << r.out;
}

TEST(Cli, SubcommandHelpListsOnlyItsOwnExitCodes) {
  const auto help = [](const std::string& cmd) {
    return run_command(stam_cmd(cmd + " --help")).out;
  };
  const std::string all = help(""), classify = help("classify"), info = help("info"),
                    batch = help("batch");
  for (const char* row : {"  3    input error", "  6    some inputs failed", "  130  interrupted"})
    EXPECT_TRUE(contains(all, row)) << row << all;
  EXPECT_TRUE(contains(classify, "  3    input error")) << classify;
  EXPECT_FALSE(contains(classify, "  6    some inputs failed")) << classify;
  EXPECT_FALSE(contains(classify, "  130")) << classify;
  EXPECT_TRUE(contains(info, "  4    model error")) << info;
  EXPECT_FALSE(contains(info, "  3    input error")) << info;
  EXPECT_FALSE(contains(info, "  5    device error")) << info;
  EXPECT_TRUE(contains(batch, "  6    some inputs failed")) << batch;
  EXPECT_TRUE(contains(batch, "  130  interrupted")) << batch;
}

TEST(Cli, InfoDescribesACheckpoint) {
  auto r = run_command(stam_cmd("info " + tiny()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "zip")) << r.out;
  EXPECT_TRUE(contains(r.out, "state dict key:   model")) << r.out;
  EXPECT_TRUE(contains(r.out, "over 8 frames")) << r.out;
}

TEST(Cli, InfoTakesThePathAsAPositionalAndExplainsMissingWeights) {
  auto r = run_command(stam_cmd("info " + shell_quote(fixture_path("tiny_stam.pth"))));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "over 8 frames")) << r.out;

  stam::test::TempDir empty;
  auto missing =
      run_command("STAM_MODELS_DIR=" + shell_quote(empty.path().string()) + " " + stam_cmd("info"));
  if (!std::filesystem::exists(stam::test::source_path("models/stam_16.pth"))) {
    EXPECT_EQ(missing.exit_code, 4);
    EXPECT_TRUE(contains(missing.err, empty.path().string())) << "where it looked: " << missing.err;
    EXPECT_TRUE(contains(missing.err, "download_models.sh 16")) << missing.err;
  }
}

// `models/stam_16.pth` reads as a path from where stam runs, as whisper.cpp's models/ does.
TEST(Cli, DefaultWeightsAreFoundInTheWorkingDirectorysModels) {
  stam::test::TempDir here;
  std::filesystem::create_directory(here.file("models"));
  std::filesystem::copy_file(fixture_path("tiny_stam.pth"), here.file("models/stam_16.pth"));
  auto r = run_command("cd " + shell_quote(here.path().string()) + " && env -u STAM_MODELS_DIR " +
                       stam_cmd("info --format json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "models/stam_16.pth")) << r.out;

  // The per-user folder download_models.sh falls back to when the installed one is root's.
  stam::test::TempDir data;
  std::filesystem::create_directories(data.file("stam/models"));
  std::filesystem::copy_file(fixture_path("tiny_stam.pth"), data.file("stam/models/stam_16.pth"));
  auto user = run_command("cd / && env -u STAM_MODELS_DIR XDG_DATA_HOME=" +
                          shell_quote(data.path().string()) + " " + stam_cmd("info --format json"));
  ASSERT_EQ(user.exit_code, 0) << user.err;
  EXPECT_TRUE(contains(user.out, data.file("stam/models/stam_16.pth"))) << user.out;
}

TEST(Cli, CudaRequestFailsClearlyWithoutAGpu) {
  auto r = run_command(
      stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny() + " --device cuda"));
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(r.exit_code, 5);
    EXPECT_TRUE(contains(r.err, "CUDA")) << r.err;
  }
}

TEST(Cli, DownloadScriptSkipsPresentFilesAndVerifiesThem) {
  // No network here: the script is exercised on files already present, which it must keep and
  // check with `stam info`.
  stam::test::TempDir models;
  std::filesystem::copy_file(fixture_path("tiny_stam.pth"), models.file("stam_16.pth"));
  const std::string env = "STAM=" + shell_quote(stam::test::stam_binary()) +
                          " STAM_MODELS_DIR=" + shell_quote(models.path().string()) + " ";
  const std::string script = shell_quote(stam::test::source_path("scripts/download_models.sh"));
  auto good = run_command(env + script + " 16");
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_TRUE(contains(good.out, "already present")) << good.out;
  EXPECT_TRUE(contains(good.out, "loads")) << good.out;

  std::ofstream(models.file("stam_8.pth")) << "truncated download";
  auto bad = run_command(env + script + " 8");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.err, "does not load")) << bad.err;

  EXPECT_EQ(run_command(env + script + " 12").exit_code, 2);
  // `all` stands for every size wherever it is given, and every size is checked before any
  // download: this asks for nothing from the network.
  auto mixed = run_command(env + script + " 16 all 12");
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_TRUE(contains(mixed.err, "unknown model size '12'")) << mixed.err;
  EXPECT_FALSE(contains(mixed.out, "downloading")) << mixed.out;
}

TEST(Cli, VerboseAddsStageDetailAndVeryVerboseMore) {
  const std::string cmd = "classify " + video("short_32frames_30fps.mp4") + " " + tiny();
  auto plain = run_command(stam_cmd(cmd));
  auto v = run_command(stam_cmd(cmd + " -v"));
  auto vv = run_command(stam_cmd(cmd + " -vv"));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(v.exit_code, 0) << v.err;
  ASSERT_EQ(vv.exit_code, 0) << vv.err;
  for (const char* detail : {"products: oneDNN", "threads of", "decoded 8 frames", "read ",
                             "model: 1 clip x 8 frames: spatial"}) {
    EXPECT_FALSE(contains(plain.err, detail)) << detail;
    EXPECT_TRUE(contains(v.err, detail)) << detail << "\n" << v.err;
  }
  EXPECT_FALSE(contains(v.err, "frame indices")) << v.err;
  EXPECT_TRUE(contains(vv.err, "frame indices")) << vv.err;
  EXPECT_EQ(plain.out.substr(0, plain.out.find("timings")), v.out.substr(0, v.out.find("timings")))
      << "logs never reach stdout";
}

TEST(Cli, SeekKeyframeTakesKeyFramesAndReportsTheirPositions) {
  stam::test::TempDir dir;
  const std::string clip = dir.file("gop50.mkv");
  // 500 frames, a key frame exactly every 50.
  auto made = run_command(
      "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=160x120:rate=25 -t 20 "
      "-c:v libx264 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p " +
      shell_quote(clip));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string cmd = "classify " + shell_quote(clip) + " " + tiny() + " --format json -q";
  auto exact = run_command(stam_cmd(cmd));
  auto key = run_command(stam_cmd(cmd + " --seek keyframe"));
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  ASSERT_EQ(key.exit_code, 0) << key.err;
  const auto exact_idx = nlohmann::json::parse(exact.out)["frame_indices"];
  const auto key_idx = nlohmann::json::parse(key.out)["frame_indices"];
  ASSERT_EQ(key_idx.size(), exact_idx.size());
  for (size_t i = 0; i < key_idx.size(); ++i) {
    const int64_t k = key_idx[i], e = exact_idx[i];
    EXPECT_EQ(k % 50, 0) << "not a key frame: " << k;
    EXPECT_TRUE(k <= e && e - k < 50) << "key frame " << k << " for sample " << e;
  }
  EXPECT_NE(key_idx, exact_idx);
  EXPECT_EQ(run_command(stam_cmd(cmd + " --seek fast")).exit_code, 2);
}

namespace {

// The damaged file: 300 noisy frames in Matroska cut after 40,000 bytes (about 10
// frames decode), made with ffmpeg -f lavfi -i testsrc2=size=320x240:rate=30 -vf
// noise=alls=9:allf=t -frames:v 300 -c:v libx264 -pix_fmt yuv420p -g 30 full.mkv; head -c 40000.
std::string make_cut_mkv(const stam::test::TempDir& dir) {
  const std::string full = dir.file("full.mkv"), cut = dir.file("cut.mkv");
  auto r = run_command(
      "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=30 "
      "-vf noise=alls=9:allf=t -frames:v 300 -c:v libx264 -pix_fmt yuv420p -g 30 " +
      shell_quote(full));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::copy_file(full, cut);
  std::filesystem::resize_file(cut, 40000);
  return cut;
}

}  // namespace

TEST(Cli, WarningsTravelWithTheResultInJsonAndText) {
  stam::test::TempDir dir;
  const std::string cut = make_cut_mkv(dir);
  auto json = run_command(stam_cmd("classify " + shell_quote(cut) + " " +
                                   video("short_32frames_30fps.mp4") + " " + tiny() +
                                   " -f 16 --format json -q"));
  ASSERT_EQ(json.exit_code, 0) << "a damaged but decodable file is labelled: " << json.err;
  std::istringstream lines(json.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  const auto j = nlohmann::ordered_json::parse(first);
  ASSERT_TRUE(j.contains("warnings")) << first;
  ASSERT_EQ(j["warnings"].size(), 2u) << first;
  EXPECT_TRUE(contains(j["warnings"][0], "the header says 300 frames but only ")) << first;
  EXPECT_TRUE(contains(j["warnings"][1], "too short for 16 samples")) << first;
  EXPECT_EQ(std::prev(j.end()).key(), "warnings") << "after precision, before logits";
  EXPECT_FALSE(nlohmann::json::parse(second).contains("warnings")) << "a clean video: " << second;

  auto text = run_command(stam_cmd("classify " + shell_quote(cut) + " " + tiny() + " -f 16 -q"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const size_t timings = text.out.find("timings: "), warnings = text.out.find("\nwarnings:\n");
  ASSERT_NE(warnings, std::string::npos) << text.out;
  EXPECT_GT(warnings, timings) << "shown under the table and timings: " << text.out;
  EXPECT_TRUE(contains(text.out, "  - the header says 300 frames")) << text.out;
  EXPECT_TRUE(contains(text.out, "  - the video is too short for 16 samples")) << text.out;
}

TEST(Cli, BadInputsAreReportedBeforeTheModelLoads) {
  // Weights that do not exist would be exit 4 once loaded: exit 3 shows the inputs were checked
  // first, and no load was tried.
  stam::test::TempDir dir;
  const std::string fifo = dir.file("pipe.mp4");
  ASSERT_EQ(run_command("mkfifo " + shell_quote(fifo)).exit_code, 0);
  for (const std::string& input : {std::string("/nonexistent/clip.mp4"), fifo}) {
    SCOPED_TRACE(input);
    auto r = run_command(
        stam_cmd("classify " + shell_quote(input) + " --weights /nonexistent/stam_16.pth"));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_TRUE(contains(r.err, input)) << r.err;
    EXPECT_FALSE(contains(r.err, "stam_16.pth")) << r.err;
  }
  // With a good input too, the bad one is reported before the model's load line, and both get
  // their record in input order.
  auto r =
      run_command(stam_cmd("classify /nonexistent/clip.mp4 " + video("short_32frames_30fps.mp4") +
                           " " + tiny() + " --format json"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  const size_t reported = r.err.find("/nonexistent/clip.mp4"), loaded = r.err.find("loaded");
  ASSERT_NE(reported, std::string::npos) << r.err;
  ASSERT_NE(loaded, std::string::npos) << r.err;
  EXPECT_LT(reported, loaded) << r.err;
  std::istringstream lines(r.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_TRUE(nlohmann::json::parse(first).contains("error")) << first;
  EXPECT_TRUE(nlohmann::json::parse(second).contains("top_k")) << second;
}

TEST(Cli, DecodeTimeoutStopsAStalledDecodeAndABadValueIsAUsageError) {
  // A limit shorter than any decoding step plays a decode that makes no progress.
  auto stalled =
      run_command("STAM_DECODE_TIMEOUT=1e-9 " +
                  stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny()));
  EXPECT_EQ(stalled.exit_code, 3) << stalled.err;
  EXPECT_TRUE(contains(stalled.err, "made no progress")) << stalled.err;
  auto bad = run_command("STAM_DECODE_TIMEOUT=soon " +
                         stam_cmd("classify " + video("short_32frames_30fps.mp4") + " " + tiny()));
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(contains(bad.err, "STAM_DECODE_TIMEOUT")) << bad.err;
}
