// stam batch end to end: the real binary, the tiny checkpoint, real videos (symlinked from
// tests/data/videos), kills at random moments, shards and CSV read back by Python's csv module.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "batch/batch.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace stam::test;

namespace {

void link_video(const std::string& video, const fs::path& at) {
  fs::create_directories(at.parent_path());
  fs::create_symlink(video_path(video), at);
}

// Small frame counts and the tiny model keep a run to well under a second of model time;
// decoding the real videos is what costs.
std::string stam_batch(const std::string& args) {
  return shell_quote(stam_binary()) + " batch " + args + " -w " +
         shell_quote(fixture_path("tiny_stam.pth")) + " -f 4";
}

CommandResult batch(const std::string& args) {
  return run_command(stam_batch(args));
}

// input -> top-1 label, or "ERR: message". Every line must parse and every input appear once.
std::map<std::string, std::string> jsonl_records(const std::string& path) {
  std::map<std::string, std::string> m;
  const std::string text = read_file(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "torn last line in " << path;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);  // throws on a torn or garbled line
    std::string v = j.contains("error") ? "ERR: " + j["error"].get<std::string>()
                                        : j["top_k"][0]["label"].get<std::string>();
    EXPECT_TRUE(m.emplace(j["input"].get<std::string>(), v).second) << "duplicate: " << line;
  }
  return m;
}

// Videos in nested folders with awkward names, plus files that must fail or be ignored.
struct Tree {
  TempDir dir;
  std::string root = dir.file("data");
  std::set<std::string> good, bad;
  Tree() {
    add_good("arm_wrestling_340x256_28fps.mp4", "Arm Wrestling.MP4");
    add_good("mpeg4_320x240_25fps.avi",
             "sub/\xc3\xbc"
             "n\xc3\xaf"
             "c\xc3\xb6"
             "d\xc3\xa9 clip.avi");
    add_good("short_32frames_30fps.mp4", "sub/deeper/short, \"quoted\".mp4");
    add_good("short_32frames_30fps.mp4", "sub/deeper/second copy.webm");
    std::ofstream(root + "/sub/not a video.mp4") << "this is text, not H.264\n";
    bad.insert(root + "/sub/not a video.mp4");
    std::ofstream(root + "/empty.mkv");
    bad.insert(root + "/empty.mkv");
    std::ofstream(root + "/readme.txt") << "ignored\n";
    std::ofstream(root + "/sub/labels.json") << "{}\n";
  }
  void add_good(const std::string& video, const std::string& rel) {
    link_video(video, root + "/" + rel);
    good.insert(root + "/" + rel);
  }
};

TEST(BatchCli, TreeWithBadFilesLabelsTheRestAndExits6) {
  Tree t;
  const std::string out = t.dir.file("out.jsonl");
  auto r = batch(shell_quote(t.root) + " --recursive -o " + shell_quote(out));
  EXPECT_EQ(r.exit_code, 6) << r.err;
  auto m = jsonl_records(out);
  EXPECT_EQ(m.size(), t.good.size() + t.bad.size());
  for (const auto& g : t.good) EXPECT_EQ(m[g].rfind("ERR", 0), std::string::npos) << g << m[g];
  for (const auto& b : t.bad) EXPECT_EQ(m[b].rfind("ERR", 0), 0u) << b;
  EXPECT_NE(r.err.find("4 labelled, 2 failed, 0 skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 ignored"), std::string::npos) << r.err;

  // Without --recursive only the top folder's two files are taken, with a hint.
  auto flat = batch(shell_quote(t.root) + " -o " + shell_quote(t.dir.file("flat.jsonl")));
  EXPECT_EQ(jsonl_records(t.dir.file("flat.jsonl")).size(), 2u);
  EXPECT_NE(flat.err.find("--recursive"), std::string::npos);

  // A finished output is not clobbered; --resume finds nothing left and still reports the errors.
  auto again = batch(shell_quote(t.root) + " -r -o " + shell_quote(out));
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  auto resumed = batch(shell_quote(t.root) + " -r --resume -o " + shell_quote(out));
  EXPECT_EQ(resumed.exit_code, 6) << resumed.err;
  EXPECT_NE(resumed.err.find("0 labelled, 0 failed, 6 skipped"), std::string::npos);
}

TEST(BatchCli, CsvRoundTripsThroughPythonsCsvModule) {
  Tree t;
  const std::string out = t.dir.file("out.csv");
  auto r = batch(shell_quote(t.root) + " -r -k 3 -o " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 6) << r.err;
  auto py = run_command(
      "python3 -c 'import csv,json,sys; "
      "print(json.dumps(list(csv.reader(open(sys.argv[1], newline=\"\", encoding=\"utf-8\")))))' " +
      shell_quote(out));
  ASSERT_EQ(py.exit_code, 0) << py.err;
  auto rows = nlohmann::json::parse(py.out);
  ASSERT_EQ(rows.size(), 1 + t.good.size() + t.bad.size());
  EXPECT_EQ(rows[0], nlohmann::json::parse(R"(["input","label_1","score_1","label_2","score_2",
                                               "label_3","score_3","warnings","error"])"));
  std::set<std::string> good, bad;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 9u);
    const bool failed = !rows[i][8].get<std::string>().empty();
    (failed ? bad : good).insert(rows[i][0].get<std::string>());
    if (!failed) {
      EXPECT_GT(std::stod(rows[i][2].get<std::string>()), 0.0);
    }
  }
  EXPECT_EQ(good, t.good);
  EXPECT_EQ(bad, t.bad);
}

// Many small inputs so a kill lands in the middle of the work.
struct Many {
  TempDir dir;
  std::string root = dir.file("clips");
  std::string out = dir.file("labels.jsonl");
  static constexpr int kCount = 16;
  Many() {
    for (int i = 0; i < kCount; ++i)
      link_video(i % 2 ? "mpeg4_320x240_25fps.avi" : "short_32frames_30fps.mp4",
                 root + "/clip" + std::to_string(10 + i) + (i % 2 ? ".avi" : ".mp4"));
  }
  std::string args() const { return shell_quote(root) + " -o " + shell_quote(out) + " -j 1"; }
};

// Starts `command` in the background, waits until `out` has at least `lines` lines (or the
// process ended), then sends `signal`. The exit status is the command's.
std::string signal_after_lines(const std::string& command, const std::string& out, int lines,
                               const std::string& signal) {
  return command + " & pid=$!; while kill -0 $pid 2>/dev/null && [ \"$(cat " + shell_quote(out) +
         " 2>/dev/null | wc -l)\" -lt " + std::to_string(lines) +
         " ]; do sleep 0.01; done; kill -" + signal + " $pid; wait $pid";
}

TEST(BatchCli, ResumeAfterKill9AtSeveralMomentsLeavesOneRecordPerInput) {
  Many d;
  size_t before = 0;
  // Kills at whatever point the work has reached once 1, 5 and 9 records are written: during
  // decoding, inference or a write. Each rerun resumes the previous one.
  for (int lines : {1, 5, 9}) {
    run_command(signal_after_lines(stam_batch(d.args() + " --resume"), d.out, lines, "9"));
    auto m = jsonl_records(d.out);  // every line whole, no duplicates, after every kill
    EXPECT_GE(m.size(), before) << lines;
    EXPECT_LT(m.size(), static_cast<size_t>(Many::kCount)) << "killed too late to test anything";
    before = m.size();
  }
  auto r = batch(d.args() + " --resume");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto m = jsonl_records(d.out);
  EXPECT_EQ(m.size(), static_cast<size_t>(Many::kCount));
  for (const auto& [input, label] : m) EXPECT_EQ(label.rfind("ERR", 0), std::string::npos);
}

TEST(BatchCli, AFailedWriteKeepsWholeRecordsAndSaysHowToResume) {
  Many d;
  // A 1 KiB file size limit plays a disk that fills up (SIGXFSZ ignored, as a full disk sends
  // none): the write of the first or second record stops part way.
  auto full = run_command("trap '' XFSZ; ulimit -f 2; exec " + stam_batch(d.args()));
  EXPECT_EQ(full.exit_code, 2) << full.err;
  EXPECT_TRUE(contains(full.err, "write failed")) << full.err;
  EXPECT_TRUE(contains(full.err, "ends with its last whole record")) << full.err;
  EXPECT_TRUE(contains(full.err, "resume with:")) << full.err;
  EXPECT_TRUE(contains(full.err, "--resume")) << full.err;
  EXPECT_LT(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));  // whole lines
  auto rest = batch(d.args() + " --resume");
  EXPECT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_FALSE(contains(rest.err, "incomplete last record")) << rest.err;
  EXPECT_EQ(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, ResumeCutsATornLastLine) {
  Many d;
  ASSERT_EQ(batch(d.args()).exit_code, 0);
  std::ofstream(d.out, std::ios::app) << R"({"input":")" << d.root << R"(/clip10.mp4","fram)";
  auto r = batch(d.args() + " --resume");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("incomplete last record"), std::string::npos) << r.err;
  EXPECT_EQ(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, ResumeWithOtherSettingsIsRefusedNamingEachDifference) {
  Many d;
  const std::string list = d.dir.file("first.txt");
  std::ofstream(list) << d.root << "/clip10.mp4\n";
  ASSERT_EQ(batch("--list " + shell_quote(list) + " -o " + shell_quote(d.out)).exit_code, 0);
  auto meta = nlohmann::json::parse(read_file(d.out + ".meta.json"));
  EXPECT_EQ(meta["weights"], "tiny_stam.pth");
  EXPECT_EQ(meta["weights_bytes"], fs::file_size(fixture_path("tiny_stam.pth")));
  EXPECT_EQ(meta["frames"], 4);
  EXPECT_EQ(meta["top_k"], 5);
  EXPECT_EQ(meta["sampling"], "uniform");
  EXPECT_EQ(meta["precision"], "auto");  // the setting as given

  const std::string before = read_file(d.out);
  auto other = run_command(shell_quote(stam_binary()) + " batch " + d.args() + " --resume -w " +
                           shell_quote(fixture_path("tiny_stam.pth")) + " --frames 8 -k 1");
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_NE(other.err.find("frames: 4 in the output, 8 now"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("top_k: 5 in the output, 1 now"), std::string::npos) << other.err;
  EXPECT_EQ(other.err.find("sampling"), std::string::npos) << "only the differences";
  EXPECT_EQ(read_file(d.out), before);

  auto same = batch(d.args() + " --resume");
  EXPECT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, ResumeWithOtherWeightsOfTheSameNameAndSizeIsRefused) {
  // Two checkpoints written by PyTorch (scripts/reference_stam.py), the second with a retrained
  // head: same name, same size.
  Many d;
  const std::string first = fixture_path("micro_ok.pth");
  const std::string tuned = fixture_path("retrained/micro_ok.pth");
  ASSERT_EQ(fs::file_size(first), fs::file_size(tuned));
  const std::string labels = " --labels " + shell_quote(fixture_path("micro_labels.txt"));
  const std::string list = d.dir.file("first.txt");
  std::ofstream(list) << d.root << "/clip10.mp4\n";
  const auto run = [&](const std::string& args, const std::string& weights) {
    return run_command(shell_quote(stam_binary()) + " batch " + args + " -w " +
                       shell_quote(weights) + labels);
  };
  ASSERT_EQ(run("--list " + shell_quote(list) + " -o " + shell_quote(d.out), first).exit_code, 0);
  const std::string before = read_file(d.out);
  auto other = run(d.args() + " --resume", tuned);
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_TRUE(contains(other.err, "weights_fingerprint: zip-crc32-fnv1a64:")) << other.err;
  EXPECT_FALSE(contains(other.err, "weights_bytes")) << other.err;
  EXPECT_EQ(read_file(d.out), before);
  EXPECT_EQ(run(d.args() + " --resume", first).exit_code, 0);
  EXPECT_EQ(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, ResumeUnderAutoKeepsThePrecisionOfTheRecords) {
  // `auto` may choose otherwise on the machine that resumes: one output must not mix the two.
  Many d;
  const std::string list = d.dir.file("first.txt");
  std::ofstream(list) << d.root << "/clip10.mp4\n";
  ASSERT_EQ(batch("--list " + shell_quote(list) + " -o " + shell_quote(d.out)).exit_code, 0);
  const std::string meta_path = d.out + ".meta.json";
  auto meta = nlohmann::json::parse(read_file(meta_path));
  const std::string chosen = meta["precision_used"];
  EXPECT_EQ(nlohmann::json::parse(read_file(d.out))["precision"], chosen);

  // As if the first run had been on a CPU where `auto` chose the other precision.
  const std::string other = chosen == "fp32" ? "bf16" : "fp32";
  meta["precision_used"] = other;
  write_file(meta_path, meta.dump(2));
  auto r = batch(d.args() + " --resume");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("precision " + other + ", as the output's records were made"),
            std::string::npos)
      << r.err;
  const auto lines = lines_of(read_file(d.out));
  ASSERT_EQ(lines.size(), static_cast<size_t>(Many::kCount));
  for (size_t i = 1; i < lines.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(lines[i])["precision"], other) << lines[i];
  EXPECT_EQ(nlohmann::json::parse(read_file(meta_path))["precision_used"], other);
}

TEST(BatchCli, SigtermStopsCleanlyWithAResumeHint) {
  Many d;
  auto r = run_command(signal_after_lines(stam_batch(d.args()), d.out, 3, "TERM"));
  if (r.exit_code == 0) GTEST_SKIP() << "the run finished before the signal";
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  auto done = jsonl_records(d.out);
  EXPECT_LT(done.size(), static_cast<size_t>(Many::kCount));
  auto rest = batch(d.args() + " --resume");
  EXPECT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, SecondSignalQuitsAtOnceLeavingWholeLines) {
  Many d;
  auto r = run_command(
      signal_after_lines(stam_batch(d.args()), d.out, 2, "TERM; sleep 0.05; kill -TERM $pid"));
  if (r.exit_code == 0) GTEST_SKIP() << "the run finished before the signals";
  EXPECT_EQ(r.exit_code, 130) << r.err;
  jsonl_records(d.out);  // parses every line
  EXPECT_EQ(batch(d.args() + " --resume").exit_code, 0);
  EXPECT_EQ(jsonl_records(d.out).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, ThreeShardsAreDisjointCoverEverythingAndAgreeWithOneRun) {
  Tree t;
  const std::string all_out = t.dir.file("all.jsonl");
  batch(shell_quote(t.root) + " -r -o " + shell_quote(all_out));
  auto all = jsonl_records(all_out);
  std::map<std::string, std::string> merged;
  for (int k = 0; k < 3; ++k) {
    const std::string out = t.dir.file("part" + std::to_string(k) + ".jsonl");
    auto r = batch(shell_quote(t.root) + " -r --shard " + std::to_string(k) + "/3 -o " +
                   shell_quote(out));
    EXPECT_NE(r.exit_code, 2) << r.err;
    for (const auto& [input, label] : jsonl_records(out))
      EXPECT_TRUE(merged.emplace(input, label).second) << input << " in two shards";
  }
  EXPECT_EQ(merged, all);

  // scripts/merge_outputs.sh gives the same, even with a shard given twice.
  const std::string merged_out = t.dir.file("merged.jsonl");
  auto m = run_command(
      shell_quote(source_path("scripts/merge_outputs.sh")) + " " + shell_quote(merged_out) + " " +
      shell_quote(t.dir.file("part0.jsonl")) + " " + shell_quote(t.dir.file("part1.jsonl")) + " " +
      shell_quote(t.dir.file("part2.jsonl")) + " " + shell_quote(t.dir.file("part0.jsonl")));
  EXPECT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(jsonl_records(merged_out), all);
  EXPECT_EQ(batch(shell_quote(t.root) + " --shard 3/3 -o x.jsonl").exit_code, 2);
}

TEST(BatchCli, ListFromStdinWithAFramesFolderAndQuietMode) {
  Many d;
  const std::string frames = d.dir.file("frames of one clip");
  fs::create_directories(frames);
  auto ff = run_command("ffmpeg -loglevel error -i " +
                        shell_quote(video_path("short_32frames_30fps.mp4")) + " -frames:v 6 " +
                        shell_quote(frames + "/img_%03d.jpg"));
  ASSERT_EQ(ff.exit_code, 0) << ff.err;
  const std::string list = d.dir.file("list.txt");
  std::ofstream(list) << d.root << "/clip10.mp4\n\n" << frames << "\n";
  auto r = run_command("cat " + shell_quote(list) + " | " +
                       stam_batch("-q --list - -o " + shell_quote(d.out)));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // -q: no progress, no summary
  auto m = jsonl_records(d.out);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m[frames].rfind("ERR", 0), std::string::npos) << m[frames];
}

TEST(BatchCli, ProgressBarShowsAtOnceWithTheFileBeingDecoded) {
  Many d;
  // script(1) gives the run a terminal, where the progress is a redrawn bar.
  auto r = run_command("script -qec " + shell_quote(stam_batch(d.args())) + " /dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  const size_t first = r.out.find("0/16");
  ASSERT_NE(first, std::string::npos) << "no 0/N bar before the first video: " << r.out;
  EXPECT_LT(first, r.out.find("1/16")) << r.out;
  // Decoding starts while the model loads: by the first draw it may be past the first file.
  const std::string first_bar = r.out.substr(first, r.out.find('\x1b', first) - first);
  EXPECT_NE(first_bar.find("decoding clip1"), std::string::npos) << r.out;
}

// Whether what starts at `at` starts a terminal line: after a line end or a carriage return,
// with at most erase-line sequences between.
bool starts_a_line(const std::string& tty, size_t at) {
  const std::string erase = "\x1b[K";
  while (at >= erase.size() && tty.compare(at - erase.size(), erase.size(), erase) == 0)
    at -= erase.size();
  return at == 0 || tty[at - 1] == '\n' || tty[at - 1] == '\r';
}

TEST(BatchCli, WarningsFromDecodeThreadsGetALineOfTheirOwnBesideTheBar) {
  TempDir t;
  for (int i = 0; i < 6; ++i)
    link_video("short_32frames_30fps.mp4", t.file("in/clip" + std::to_string(i) + ".mp4"));
  // 40 frames from 32: each clip's decode worker warns, mostly while the bar is on screen.
  const std::string run = shell_quote(stam_binary()) + " batch " + shell_quote(t.file("in")) +
                          " -o " + shell_quote(t.file("o.jsonl")) + " -j 1 -f 40 -w " +
                          shell_quote(fixture_path("tiny_stam.pth"));
  auto r = run_command("script -qec " + shell_quote(run) + " /dev/null");  // a terminal: the bar
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_NE(r.out.find("1/6"), std::string::npos) << "no bar: " << r.out;
  const std::regex log_line(R"(\[\d\d:\d\d:\d\d\.\d{3}\] )");
  int warnings = 0;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), log_line), end; it != end; ++it) {
    const size_t at = static_cast<size_t>(it->position());
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    warnings += line.find("too short for 40 samples") != std::string::npos;
    EXPECT_TRUE(starts_a_line(r.out, at)) << "on the bar's line: " << line;
  }
  EXPECT_EQ(warnings, 6) << r.out;
}

TEST(BatchCli, ListTakesOneFileAndCombinesWithInputs) {
  Many d;
  const std::string list = d.dir.file("list.txt");
  std::ofstream(list) << d.root << "/clip10.mp4\n";
  // The positional after --list FILE is an input, not a second list: a binary AVI read as a list
  // gave over a thousand garbage records.
  const std::string avi = d.root + "/clip11.avi";
  auto r =
      batch("--list " + shell_quote(list) + " " + shell_quote(avi) + " -o " + shell_quote(d.out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto m = jsonl_records(d.out);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.count(avi), 1u);

  // A directory after --list is walked, not dropped.
  const std::string out2 = d.dir.file("two.jsonl");
  auto dir =
      batch("--list " + shell_quote(list) + " " + shell_quote(d.root) + " -o " + shell_quote(out2));
  EXPECT_EQ(dir.exit_code, 0) << dir.err;
  EXPECT_EQ(jsonl_records(out2).size(), static_cast<size_t>(Many::kCount));
}

TEST(BatchCli, AListThatIsNotTextIsAUsageError) {
  Many d;
  std::ofstream(d.dir.file("nul.txt")) << d.root << "/clip10.mp4\n" << std::string(1, '\0');
  for (const std::string& list :
       {d.dir.file("nul.txt"), d.root, video_path("mpeg4_320x240_25fps.avi")}) {
    auto r = batch("--list " + shell_quote(list) + " -o " + shell_quote(d.out));
    EXPECT_EQ(r.exit_code, 2) << list << ": " << r.err;
    EXPECT_NE(r.err.find(list), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(d.out)) << list;
  }
}

// A file name is bytes: one that is not UTF-8 (Latin-1 here) can be listed, as `find > list`
// writes it, and is recorded escaped as a walk records it. Such a list used to be refused whole.
TEST(BatchCli, AListLineThatIsNotUtf8NamesTheFileItsBytesName) {
  Many d;
  const std::string latin1 = d.dir.file("caf\xe9.mp4");
  fs::create_symlink(video_path("short_32frames_30fps.mp4"), latin1);
  std::ofstream(d.dir.file("latin1.txt")) << latin1 << "\n";
  auto r = batch("--list " + shell_quote(d.dir.file("latin1.txt")) + " -o " + shell_quote(d.out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto m = jsonl_records(d.out);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.begin()->first, d.dir.file("caf\\xE9.mp4"));
  EXPECT_EQ(m.begin()->second.rfind("ERR", 0), std::string::npos) << m.begin()->second;
}

TEST(BatchCli, UnusableOutputIsAUsageErrorNamingThePath) {
  Many d;
  auto r = batch(shell_quote(d.root) + " -o /proc/stam-nope/out.jsonl");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/proc/stam-nope/out.jsonl"), std::string::npos) << r.err;
  auto dir = batch(shell_quote(d.root) + " -o " + shell_quote(d.dir.path().string()));
  EXPECT_EQ(dir.exit_code, 2);
  EXPECT_EQ(batch(shell_quote(d.root) + " -o o.jsonl --resume --overwrite").exit_code, 2);
  auto retry = batch(shell_quote(d.root) + " -o o.jsonl --retry-errors --overwrite");
  EXPECT_EQ(retry.exit_code, 2);
  EXPECT_NE(retry.err.find("--overwrite exclude each other"), std::string::npos) << retry.err;
  EXPECT_EQ(batch("/no/such/videos -o " + shell_quote(d.out)).exit_code, 2);
}

TEST(BatchCli, ExtAndShardValuesThatWouldDoTheWrongThingAreUsageErrors) {
  Many d;
  const std::string args = shell_quote(d.root) + " -o " + shell_quote(d.out);
  // A pattern matched nothing and the run ended with 0; an empty value meant the default.
  for (const std::string bad : {"--ext '*.mp4'", "--ext ''", "--shard ''"}) {
    auto r = batch(args + " " + bad);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_TRUE(contains(r.err, bad.substr(0, bad.find(' ')))) << bad << ": " << r.err;
    EXPECT_FALSE(fs::exists(d.out)) << bad;
  }
  EXPECT_TRUE(contains(batch(args + " --ext '*.mp4'").err, "did you mean mp4?"));
  // An empty shard is no error: 16 shards over 8 videos leave half of them empty.
  auto empty = batch(args + " --ext mp4 --shard 15/16");
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_TRUE(contains(empty.err, "0 input(s) in shard 15/16")) << empty.err;
  // ... and it says so, rather than that no video files were found.
  EXPECT_TRUE(contains(
      empty.err, "shard 15/16 has none of the " + std::to_string(Many::kCount / 2) + " input(s)"))
      << empty.err;
  EXPECT_FALSE(contains(empty.err, "no video files found")) << empty.err;
}

// merge_outputs.sh and --resume go by the file name: CSV written into x.jsonl could not be merged.
TEST(BatchCli, AFormatTheOutputNameContradictsIsRefused) {
  Many d;
  const std::string jsonl = d.dir.file("x.jsonl"), csv = d.dir.file("x.csv");
  auto r = batch(shell_quote(d.root) + " -o " + shell_quote(jsonl) + " --format csv");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--format csv, but --output " + jsonl + " is named as JSONL"))
      << r.err;
  r = batch(shell_quote(d.root) + " -o " + shell_quote(csv) + " --format jsonl");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "is named as CSV")) << r.err;
  EXPECT_FALSE(fs::exists(jsonl));
  EXPECT_FALSE(fs::exists(csv));
}

// Beyond the class count every class is in the top k: the CSV had columns that were always empty.
TEST(BatchCli, TopKBeyondTheClassCountIsTheClassCount) {
  Many d;
  const std::string csv = d.dir.file("k.csv");
  std::ofstream(d.dir.file("one.txt")) << d.root << "/clip10.mp4\n";
  auto r = run_command(shell_quote(stam_binary()) + " batch --list " +
                       shell_quote(d.dir.file("one.txt")) + " -o " + shell_quote(csv) +
                       " -k 10 -w " + shell_quote(fixture_path("micro_ok.pth")) + " --labels " +
                       shell_quote(fixture_path("micro_labels.txt")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "--top-k 10 is more than the 5 classes the labels name; using 5"))
      << r.err;
  const std::string text = read_file(csv);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "input,label_1,score_1,label_2,score_2,label_3,score_3,label_4,score_4,label_5,score_5,"
            "warnings,error");
  EXPECT_EQ(nlohmann::json::parse(read_file(csv + ".meta.json"))["top_k"], 5);
}

TEST(BatchCli, MissingWeightsExit4BeforeAnyRecord) {
  Many d;
  auto r =
      run_command(shell_quote(stam_binary()) + " batch " + d.args() + " -w /no/such/model.pth");
  EXPECT_EQ(r.exit_code, 4) << r.err;
}

TEST(BatchCli, AFailedRunCreatesNothingAndDoesNotBlockItsRerun) {
  Many d;
  const std::string csv = d.dir.file("labels.csv");
  const std::string args = shell_quote(d.root) + " -o " + shell_quote(csv);
  auto failed =
      run_command(shell_quote(stam_binary()) + " batch " + args + " -w /no/such/model.pth");
  EXPECT_EQ(failed.exit_code, 4) << failed.err;
  EXPECT_FALSE(fs::exists(csv)) << "created before the model loaded";
  EXPECT_FALSE(fs::exists(csv + ".meta.json"));

  // What older versions left behind (a header and no record) is not work to keep.
  std::ofstream(csv) << "input,label_1,score_1,error\n";
  auto rerun = batch(args);
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  const std::string rows = read_file(csv);
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 1 + Many::kCount) << rows;
}

TEST(BatchCli, OutputIntoAMissingFolderIsRefusedNotCreated) {
  Many d;
  const std::string typo = d.dir.file("reslts");
  auto r = batch(shell_quote(d.root) + " -o " + shell_quote(typo + "/deep/labels.jsonl"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(typo + "/deep does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(typo));
}

}  // namespace

TEST(BatchCli, WarningsAreInTheJsonlRecordAndTheCsvColumn) {
  // The issue's damaged file (Matroska cut after 40,000 bytes: ffmpeg -f lavfi -i
  // testsrc2=size=320x240:rate=30 -vf noise=alls=9:allf=t -frames:v 300 -c:v libx264 -pix_fmt
  // yuv420p -g 30 full.mkv; head -c 40000) beside a clean video, with -f 16 so frames repeat.
  TempDir t;
  const std::string full = t.file("full.mkv"), cut = t.file("in/cut.mkv");
  auto made = run_command(
      "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=30 "
      "-vf noise=alls=9:allf=t -frames:v 300 -c:v libx264 -pix_fmt yuv420p -g 30 " +
      shell_quote(full));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  fs::create_directories(t.file("in"));
  fs::copy_file(full, cut);
  fs::resize_file(cut, 40000);
  link_video("short_32frames_30fps.mp4", t.file("in/clean.mp4"));

  const std::string jsonl = t.file("out.jsonl");
  // The tiny model with 16 frames (stam_batch() would give it 4).
  const auto batch16 = [](const std::string& args) {
    return run_command(shell_quote(stam_binary()) + " batch " + args + " -w " +
                       shell_quote(fixture_path("tiny_stam.pth")) + " -f 16");
  };
  auto r = batch16(shell_quote(t.file("in")) + " -o " + shell_quote(jsonl));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, nlohmann::json> records;
  std::istringstream in(read_file(jsonl));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    records[fs::path(j["input"].get<std::string>()).filename().string()] = j;
  }
  ASSERT_EQ(records.size(), 2u);
  ASSERT_TRUE(records["cut.mkv"].contains("warnings")) << records["cut.mkv"];
  EXPECT_EQ(records["cut.mkv"]["warnings"].size(), 2u) << records["cut.mkv"];
  EXPECT_FALSE(records["clean.mp4"].contains("warnings")) << records["clean.mp4"];

  const std::string csv = t.file("out.csv");
  r = batch16(shell_quote(t.file("in")) + " -o " + shell_quote(csv) + " -k 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto py = run_command(
      "python3 -c 'import csv,json,sys; "
      "print(json.dumps(list(csv.reader(open(sys.argv[1], newline=\"\", encoding=\"utf-8\")))))' " +
      shell_quote(csv));
  ASSERT_EQ(py.exit_code, 0) << py.err;
  auto rows = nlohmann::json::parse(py.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], nlohmann::json::parse(R"(["input","label_1","score_1","warnings","error"])"));
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::string input = rows[i][0], warnings = rows[i][3];
    if (contains(input, "cut.mkv")) {
      EXPECT_TRUE(contains(warnings, "the header says 300 frames")) << warnings;
      EXPECT_TRUE(contains(warnings, "; the video is too short for 16 samples")) << warnings;
    } else {
      EXPECT_EQ(warnings, "") << input;
    }
    EXPECT_EQ(rows[i][4], "") << input;
  }
}

TEST(BatchCli, UnreadableListedInputsBecomeErrorRecordsAndTheRestGoOn) {
  // A missing path and a FIFO (which would block a reader forever) in the list: each gets its
  // error record at once, and the video between them is labelled.
  TempDir t;
  const std::string fifo = t.file("pipe.mp4"), list = t.file("list.txt"), out = t.file("o.jsonl");
  ASSERT_EQ(run_command("mkfifo " + shell_quote(fifo)).exit_code, 0);
  std::ofstream(list) << "/nonexistent/a.mp4\n"
                      << video_path("short_32frames_30fps.mp4") << "\n"
                      << fifo << "\n";
  auto r = batch("--list " + shell_quote(list) + " -o " + shell_quote(out));
  EXPECT_EQ(r.exit_code, 6) << r.err;
  auto m = jsonl_records(out);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_TRUE(contains(m["/nonexistent/a.mp4"], "ERR: ")) << m["/nonexistent/a.mp4"];
  EXPECT_TRUE(contains(m[fifo], "not a regular file")) << m[fifo];
  EXPECT_FALSE(contains(m[video_path("short_32frames_30fps.mp4")], "ERR"));
}

TEST(BatchCli, WalkedNamesOfVideosThatAreNotFilesGetErrorRecords) {
  TempDir d;
  const std::string root = d.file("clips");
  link_video("short_32frames_30fps.mp4", root + "/good.mp4");
  fs::create_symlink(d.file("nowhere.mp4"), root + "/gone.mp4");  // dangling
  fs::create_symlink(root + "/loop.mp4", root + "/loop.mp4");     // a loop
  ASSERT_EQ(run_command("mkfifo " + shell_quote(root + "/pipe.mkv")).exit_code, 0);
  const std::string out = d.file("out.jsonl");
  auto r = run_command("timeout 120 " + stam_batch(shell_quote(root) + " -o " + shell_quote(out)));
  EXPECT_EQ(r.exit_code, 6) << r.err;
  auto m = jsonl_records(out);
  EXPECT_EQ(m.size(), 4u);
  EXPECT_EQ(m[root + "/good.mp4"].rfind("ERR", 0), std::string::npos);
  for (const char* bad : {"/gone.mp4", "/loop.mp4", "/pipe.mkv"})
    EXPECT_EQ(m[root + bad].rfind("ERR", 0), 0u) << bad << ": " << m[root + bad];
}

TEST(BatchCli, AnUnreadableWalkedFolderGetsAnErrorRecord) {
  // A folder the run may not read (mode 700, another owner's), with a video in it. Root reads
  // any folder, so as root the run is made as nobody (setpriv); as anyone else, chmod is enough.
  TempDir d;
  fs::permissions(d.path(), fs::perms::all);  // nobody writes the output here
  const std::string root = d.file("clips"), locked = root + "/locked", out = d.file("out.jsonl");
  link_video("short_32frames_30fps.mp4", root + "/open.mp4");
  link_video("short_32frames_30fps.mp4", locked + "/hidden from us.mp4");
  std::string as_other;
  if (::geteuid() == 0) {
    ASSERT_EQ(run_command("command -v setpriv").exit_code, 0) << "setpriv (util-linux) needed";
    fs::permissions(locked, fs::perms::owner_all);
    as_other = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  } else {
    fs::permissions(locked, fs::perms::none);
  }
  auto r = run_command(as_other + stam_batch(shell_quote(root) + " -r -o " + shell_quote(out)));
  fs::permissions(locked, fs::perms::owner_all);  // for TempDir to remove it
  EXPECT_EQ(r.exit_code, 6) << r.err;
  auto m = jsonl_records(out);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m[root + "/open.mp4"].rfind("ERR", 0), std::string::npos) << m[root + "/open.mp4"];
  EXPECT_TRUE(contains(m[locked], "ERR: " + locked +
                                      ": cannot read folder: Permission denied; "
                                      "the videos in it were not searched"))
      << m[locked];
  EXPECT_TRUE(contains(r.err, locked + ": cannot read folder")) << r.err;
}

TEST(BatchCli, AnOutputThatIsNotARegularFileIsRefusedAtOnce) {
  TempDir d;
  const std::string fifo = d.file("out.jsonl");
  ASSERT_EQ(run_command("mkfifo " + shell_quote(fifo)).exit_code, 0);
  // Reading the output back (for --resume) would block on a FIFO forever.
  for (const std::string& out : {fifo, std::string("/dev/zero")}) {
    auto r =
        run_command("timeout 60 " + stam_batch(shell_quote(video_path("short_32frames_30fps.mp4")) +
                                               " -o " + shell_quote(out)));
    EXPECT_EQ(r.exit_code, 2) << out << ": " << r.err;
    EXPECT_TRUE(contains(r.err, out + " is not a regular file")) << r.err;
  }
}

TEST(BatchCli, NamesThatAreNotUtf8GetARecordEachAndResume) {
  TempDir d;
  const std::string root = d.file("latin1");
  link_video("short_32frames_30fps.mp4", root + "/caf\xe9.mp4");
  link_video("short_32frames_30fps.mp4", root + "/caf\xe8.mp4");
  // A name spelling the first one's escape, backslash and all: it must not share its record.
  link_video("short_32frames_30fps.mp4", root + "/caf\\xE9.mp4");
  const std::string out = d.file("out.jsonl");
  auto r = batch(shell_quote(root) + " -o " + shell_quote(out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto m = jsonl_records(out);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.count(root + "/caf\\xE9.mp4"), 1u);
  EXPECT_EQ(m.count(root + "/caf\\xE8.mp4"), 1u);
  EXPECT_EQ(m.count(root + "/caf\\x5CxE9.mp4"), 1u);
  auto again = batch(shell_quote(root) + " --resume -o " + shell_quote(out));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(contains(again.err, "0 labelled, 0 failed, 3 skipped")) << again.err;
  // With the first record alone in the output, resuming labels the other two.
  const std::string first = read_file(out).substr(0, read_file(out).find('\n') + 1);
  std::ofstream(out, std::ios::trunc) << first;
  auto rest = batch(shell_quote(root) + " --resume -o " + shell_quote(out));
  EXPECT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_TRUE(contains(rest.err, "2 labelled, 0 failed, 1 skipped")) << rest.err;
  EXPECT_EQ(jsonl_records(out).size(), 3u);
}

TEST(BatchCli, NonFiniteScoresAreErrorsNotResults) {
  // A checkpoint written by PyTorch with NaN and infinities in its weights
  // (scripts/reference_stam.py): every score is NaN.
  TempDir d;
  const std::string nan_pth = fixture_path("micro_nonfinite.pth");
  const std::string a = video_path("short_32frames_30fps.mp4");
  const std::string b = video_path("mpeg4_320x240_25fps.avi");
  const std::string model =
      " -w " + shell_quote(nan_pth) + " --labels " + shell_quote(fixture_path("micro_labels.txt"));
  for (const char* format : {"jsonl", "csv"}) {
    const std::string out = d.file(std::string("out.") + format);
    // A batch of two fails whole and is retried clip by clip: each input gets its error.
    auto r = run_command(shell_quote(stam_binary()) + " batch " + shell_quote(a) + " " +
                         shell_quote(b) + " -b 2 -o " + shell_quote(out) + model);
    EXPECT_EQ(r.exit_code, 6) << format << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "0 labelled, 2 failed")) << r.err;
    const std::string text = read_file(out);
    EXPECT_FALSE(contains(text, "null") || contains(text, "nan")) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), format == std::string("csv") ? 3 : 2)
        << text;
    if (format == std::string("csv")) continue;
    for (const auto& [input, label] : jsonl_records(out))
      EXPECT_TRUE(contains(label, "ERR: " + input + ": the model produced non-finite scores"))
          << label;
  }
  // classify shares the check: an error object for the input and the model's exit code.
  auto c = run_command(shell_quote(stam_binary()) + " classify " + shell_quote(a) + model +
                       " --format json");
  EXPECT_EQ(c.exit_code, 4) << c.err;
  const auto j = nlohmann::json::parse(c.out);
  EXPECT_EQ(j["input"], a);
  EXPECT_TRUE(contains(j.value("error", ""), "weights (" + nan_pth + ") may be damaged")) << j;
}

TEST(BatchCli, ResumeWithAnotherSeekModeIsRefused) {
  TempDir d;
  const std::string clip = shell_quote(video_path("short_32frames_30fps.mp4"));
  const std::string out = d.file("out.jsonl");
  ASSERT_EQ(batch(clip + " -o " + shell_quote(out)).exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(read_file(out + ".meta.json"))["seek"], "exact");
  auto r = batch(clip + " --seek keyframe --resume -o " + shell_quote(out));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "seek: exact in the output, keyframe now")) << r.err;
}

TEST(BatchCli, AListMayStartWithAByteOrderMark) {
  TempDir d;
  const std::string clip = video_path("short_32frames_30fps.mp4");
  const std::string list = d.file("list.txt");
  std::ofstream(list) << "\xEF\xBB\xBF" << clip << "\r\n";
  const std::string out = d.file("out.jsonl");
  auto r = batch("--list " + shell_quote(list) + " -o " + shell_quote(out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(jsonl_records(out).count(clip), 1u);
}

TEST(BatchCli, ResumeFindsAFolderSpelledAnotherWay) {
  TempDir d;
  link_video("short_32frames_30fps.mp4", d.file("ds/a.mp4"));
  link_video("mpeg4_320x240_25fps.avi", d.file("ds/b.avi"));
  const std::string out = d.file("out.jsonl");
  const std::string in_dir = "cd " + shell_quote(d.path().string()) + " && ";
  auto first = run_command(in_dir + stam_batch("ds -o out.jsonl"));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  for (const char* spelling : {"./ds", "ds//", "ds/./"}) {
    auto r = run_command(in_dir + stam_batch(std::string(spelling) + " --resume -o out.jsonl"));
    EXPECT_EQ(r.exit_code, 0) << spelling << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "0 labelled, 0 failed, 2 skipped")) << spelling << ": " << r.err;
  }
  // Named twice, one folder is labelled once.
  auto twice = run_command(in_dir + stam_batch("ds ./ds -o twice.jsonl"));
  EXPECT_EQ(twice.exit_code, 0) << twice.err;
  EXPECT_EQ(jsonl_records(d.file("twice.jsonl")).size(), 2u);
  EXPECT_EQ(jsonl_records(out).size(), 2u);
}

// batch::run_classifier is what `stam batch` runs after parsing: called here directly, no
// subprocess. It fits the top-k to the labels and records the checkpoint's T in the settings.
TEST(BatchRunClassifier, LabelsEveryInputWithTheSettingsOfTheModel) {
  TempDir dir;
  link_video("short_32frames_30fps.mp4", dir.path() / "in" / "a.mp4");
  link_video("mpeg4_320x240_25fps.avi", dir.path() / "in" / "b.avi");
  stam::batch::Options o;
  o.inputs.paths = {(dir.path() / "in").string()};
  o.output = dir.file("out.jsonl");
  stam::ModelOptions model;
  model.weights = fixture_path("tiny_stam.pth");  // T = 8, 400 classes
  model.labels = source_path("models/kinetics400_labels.txt");
  model.device = "cpu";
  model.top_k = 1000;
  std::istringstream no_list;
  const stam::batch::Summary s = stam::batch::run_classifier(o, model, no_list);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.labelled, 2);
  EXPECT_EQ(s.failed, 0);
  const auto records = lines_of(read_file(o.output));
  ASSERT_EQ(records.size(), 2u);
  for (const auto& line : records) EXPECT_EQ(nlohmann::json::parse(line)["top_k"].size(), 400u);
  const auto settings = nlohmann::json::parse(read_file(o.output + ".meta.json"));
  EXPECT_EQ(settings["frames"], 8) << settings.dump();
  EXPECT_EQ(settings["top_k"], 400) << settings.dump();
}
