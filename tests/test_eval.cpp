// stam eval: ground truth from trees and lists, records read back, the metrics, and the whole
// command on the tiny checkpoint whose predictions the PyTorch reference fixed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eval.hpp"
#include "labels.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace stam::test;

namespace {

const std::vector<std::string> kLabels{"abseiling", "air drumming", "making tea",
                                       "passing American football (in game)", "skydiving"};

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

stam::eval::Outcome ranked(std::vector<int64_t> r) {
  return {std::move(r), ""};
}

stam::eval::Outcome failed(const std::string& error) {
  return {{}, error};
}

std::string kinetics_labels() {
  return source_path("models/kinetics400_labels.txt");
}

}  // namespace

TEST(Eval, ClassNamesMatchExactlyOrWithUnderscores) {
  EXPECT_EQ(stam::eval::find_class("making tea", kLabels), 2);
  EXPECT_EQ(stam::eval::find_class("making_tea", kLabels), 2);
  EXPECT_EQ(stam::eval::find_class("passing_american_football_(in_game)", kLabels), 3);
  EXPECT_EQ(stam::eval::find_class("making coffee", kLabels), -1);
}

TEST(Eval, TreeGivesEachVideoItsFolderClass) {
  TempDir d;
  touch(d.path() / "skydiving" / "b.mp4");
  touch(d.path() / "skydiving" / "a.MKV");
  touch(d.path() / "air_drumming" / "sub" / "c.avi");
  touch(d.path() / "air_drumming" / "notes.txt");  // not a video: skipped
  touch(d.path() / ".cache" / "d.mp4");            // dot folder: skipped
  const auto s =
      stam::eval::samples_from_tree(d.path().string(), kLabels, stam::video_extensions());
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].input, (d.path() / "air_drumming" / "sub" / "c.avi").string());
  EXPECT_EQ(s[0].label, 1);
  EXPECT_EQ(s[1].input, (d.path() / "skydiving" / "a.MKV").string());
  EXPECT_EQ(s[2].label, 4);
}

TEST(Eval, TreeWithUnknownClassFoldersNamesThemAll) {
  TempDir d;
  touch(d.path() / "skydiving" / "a.mp4");
  touch(d.path() / "sky_diving" / "b.mp4");
  touch(d.path() / "juggling" / "c.mp4");
  try {
    stam::eval::samples_from_tree(d.path().string(), kLabels, {"mp4"});
    FAIL() << "unknown class folders accepted";
  } catch (const stam::Error& e) {
    EXPECT_EQ(e.code(), stam::Exit::kUsage);
    const std::string m = e.what();
    EXPECT_NE(m.find("2 folder(s)"), std::string::npos) << m;
    EXPECT_NE(m.find("'juggling'"), std::string::npos) << m;
    EXPECT_NE(m.find("'sky_diving'"), std::string::npos) << m;
  }
  EXPECT_THROW(stam::eval::samples_from_tree(d.file("nothing"), kLabels, {"mp4"}), stam::Error);
}

TEST(Eval, ListLinesTakeANameOrAnIndexAfterTheLastComma) {
  std::istringstream in("a.mp4,skydiving\r\n\nodd,name.mp4,making_tea\nc.mp4,1\n");
  const auto s = stam::eval::samples_from_list(in, "list.txt", kLabels);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].input, "a.mp4");
  EXPECT_EQ(s[0].label, 4);
  EXPECT_EQ(s[1].input, "odd,name.mp4");
  EXPECT_EQ(s[1].label, 2);
  EXPECT_EQ(s[2].label, 1);

  std::istringstream bad("a.mp4,skydiving\nb.mp4,juggling\nno label\nc.mp4,5\n");
  try {
    stam::eval::samples_from_list(bad, "list.txt", kLabels);
    FAIL() << "bad labels accepted";
  } catch (const stam::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("list.txt: 3 bad line(s)"), std::string::npos) << m;
    EXPECT_NE(m.find("line 2: 'juggling' names no class"), std::string::npos) << m;
    EXPECT_NE(m.find("line 3 is not 'path,label'"), std::string::npos) << m;
    EXPECT_NE(m.find("line 4: '5'"), std::string::npos) << m;  // index out of range
  }
}

TEST(Eval, ListLabelsMayHaveSpacesAroundThemOrBeQuotedAsCsvQuotesThem) {
  // `a.mp4, making tea` and `a.mp4,"making tea"` (as stam's own CSV writes a field) were refused.
  const std::vector<std::string> labels{"making tea", "say \"hi\"", "x, y"};
  std::istringstream in(
      "a.mp4, making tea \n"
      "b.mp4,\"making tea\"\n"
      "c,d.mp4 ,  \"x, y\"  \n"
      "e.mp4,\"say \"\"hi\"\"\"\n"
      "f.mp4, 2\n");
  const auto s = stam::eval::samples_from_list(in, "list.csv", labels);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].input, "a.mp4");
  EXPECT_EQ(s[0].label, 0);
  EXPECT_EQ(s[1].label, 0);
  EXPECT_EQ(s[2].input, "c,d.mp4 ");  // paths as given
  EXPECT_EQ(s[2].label, 2);
  EXPECT_EQ(s[3].label, 1);
  EXPECT_EQ(s[4].label, 2);

  // Quotes that do not pair up say what is wrong, without wrapping the label in more quotes.
  std::istringstream bad(
      "a.mp4,\"making tea\n"
      "b.mp4,making tea\"\n"
      "c.mp4,\"say \"hi\"\"\n"
      "d.mp4,\"making coffee\"\n");
  try {
    stam::eval::samples_from_list(bad, "list.csv", labels);
    FAIL() << "bad quotes accepted";
  } catch (const stam::UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("list.csv: 4 bad line(s)"), std::string::npos) << m;
    EXPECT_NE(m.find("line 1: the label \"making tea opens a quote that is not closed"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("line 2: the label making tea\" closes a quote that was not opened"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("line 3: the label \"say \"hi\"\" has a quote inside that is not doubled"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("line 4: 'making coffee' names no class"), std::string::npos) << m;
    // Each problem was put in quotes of its own: 'line 4: 'making coffee' names no class'.
    EXPECT_NE(m.find("is not closed; line 2: "), std::string::npos) << m;
    EXPECT_EQ(m.find("'line"), std::string::npos) << m;
  }
}

TEST(Eval, AVideoListedTwiceCountsOnceAndTwoLabelsForItAreRefused) {
  // Listed twice, it was counted twice, and under two labels it was a miss for one of them
  // whatever the model said. (The list starts with a byte-order mark, which batch drops: kept,
  // it made the first video one that batch never labels.)
  std::istringstream twice(
      "\xEF\xBB\xBF"
      "a.mp4,skydiving\nb.mp4,1\n./a.mp4,4\n");
  const auto s = stam::eval::samples_from_list(twice, "list.txt", kLabels);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].input, "a.mp4");
  EXPECT_EQ(s[1].input, "b.mp4");

  std::istringstream clash("a.mp4,skydiving\nb.mp4,1\nc/../a.mp4,making_tea\n");
  try {
    stam::eval::samples_from_list(clash, "list.txt", kLabels);
    FAIL() << "two labels for one video accepted";
  } catch (const stam::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3: 'c/../a.mp4' is on line 1 with another label"),
              std::string::npos)
        << e.what();
  }
}

TEST(Eval, MetricsCountTopOneTopKClassMeanFailuresAndMissing) {
  const std::vector<stam::eval::Sample> samples{{"a", 4}, {"b", 4}, {"c", 1}, {"d", 2},
                                                {"e", 2}, {"f", 0}, {"g", 0}};
  // "x" is not in the set: ignored.
  const std::unordered_map<std::string, stam::eval::Outcome> records{
      {"a", ranked({4, 1, 2})},  // right
      {"b", ranked({4, 0, 1})},  // right
      {"c", ranked({4, 1, 0})},  // second
      {"d", ranked({4, 0, 1})},  // not in the top 3
      {"e", ranked({4, 2, 1})},  // second
      {"f", failed("f: cannot decode")}, {"x", ranked({0})},
  };
  const auto r = stam::eval::evaluate(samples, records, 3);
  EXPECT_EQ(r.total, 7);
  EXPECT_EQ(r.evaluated, 5);
  EXPECT_EQ(r.top1, 2);
  EXPECT_EQ(r.topk, 4);
  EXPECT_DOUBLE_EQ(r.top1_accuracy, 0.4);
  EXPECT_DOUBLE_EQ(r.topk_accuracy, 0.8);
  EXPECT_DOUBLE_EQ(r.mean_class_accuracy, (1.0 + 0.0 + 0.0) / 3);  // class 0 has no result
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].input, "f");
  EXPECT_EQ(r.failed[0].error, "f: cannot decode");
  EXPECT_EQ(r.missing, std::vector<std::string>{"g"});
  ASSERT_EQ(r.classes.size(), 4u);
  EXPECT_EQ(r.classes[0].index, 0);
  EXPECT_EQ(r.classes[0].failed, 1);
  EXPECT_EQ(r.classes[2].videos, 2);  // making tea
  EXPECT_EQ(r.classes[2].topk, 1);
  ASSERT_EQ(r.confusions.size(), 2u);
  EXPECT_EQ(r.confusions[0].truth, 2);  // making tea -> skydiving twice
  EXPECT_EQ(r.confusions[0].predicted, 4);
  EXPECT_EQ(r.confusions[0].count, 2);
  EXPECT_EQ(r.confusions[1].truth, 1);
  EXPECT_EQ(stam::eval::evaluate(samples, records, 3, 1).confusions.size(), 1u);

  const auto j = stam::eval::report_json(r, kLabels);
  EXPECT_EQ(j["top1"], 0.4);
  EXPECT_EQ(j["classes"][2]["topk"], 0.5);  // a fraction, as at the top level
  EXPECT_EQ(j["classes"][2]["topk_hits"], 1);
  EXPECT_TRUE(j["classes"][0]["top1"].is_null()) << "no evaluated video";
  EXPECT_EQ(j["failed"][0]["input"], "f");
  EXPECT_EQ(j["confusions"][0]["truth"], "making tea");
  const std::string text = stam::eval::report_text(r, kLabels);
  EXPECT_NE(text.find("top-1 40.00 %  top-3 80.00 %  mean class 33.33 %"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  index  videos   top-1   top-3  failed  class\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("      2  making tea -> skydiving"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  f: cannot decode\n"), std::string::npos) << text;

  // k = 1: the top-k figures are the top-1 ones, shown once.
  const std::string one =
      stam::eval::report_text(stam::eval::evaluate(samples, records, 1), kLabels);
  EXPECT_NE(one.find("top-1 40.00 %  mean class 33.33 %\n"), std::string::npos) << one;
  EXPECT_NE(one.find("  index  videos   top-1  failed  class\n"), std::string::npos) << one;
  EXPECT_NE(one.find("\n      2       2     0.0       0  making tea\n"), std::string::npos) << one;
}

TEST(Eval, NothingEvaluatedHasNoAccuracyRatherThanZero) {
  // A shard with no videos, or every input failed: 0 % would read as a model that is always
  // wrong. The per-class figures were null already.
  const std::vector<stam::eval::Sample> samples{{"a", 4}, {"b", 2}};
  const std::unordered_map<std::string, stam::eval::Outcome> records{{"a", failed("broken")}};
  for (const auto& set : {std::vector<stam::eval::Sample>{}, samples}) {
    const auto r = stam::eval::evaluate(set, records, 5);
    ASSERT_EQ(r.evaluated, 0);
    const auto j = stam::eval::report_json(r, kLabels);
    EXPECT_TRUE(j["top1"].is_null()) << j.dump();
    EXPECT_TRUE(j["topk"].is_null()) << j.dump();
    EXPECT_TRUE(j["mean_class_accuracy"].is_null()) << j.dump();
    const std::string text = stam::eval::report_text(r, kLabels);
    EXPECT_NE(text.find("\ntop-1 n/a  top-5 n/a  mean class n/a\n"), std::string::npos) << text;
  }
}

TEST(Eval, RecordsReadBackWithResultsOverErrorsAndNoTornTail) {
  TempDir d;
  std::ofstream(d.file("r.jsonl"))
      << "{\"input\": \"a\", \"error\": \"broken\"}\n"
      << "{\"input\": \"a\", \"top_k\": [{\"index\": 3, \"label\": \"x\", \"score\": 0.5}]}\n"
      << "{\"input\": \"b\", \"error\": \"broken\"}\n"
      << "{\"input\": \"c\", \"top_";
  const auto r = stam::eval::read_records(d.file("r.jsonl"));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r.at("a").ranked, std::vector<int64_t>{3});
  EXPECT_EQ(r.at("b").error, "broken");

  std::ofstream(d.file("bad.jsonl")) << "{\"input\": \"a\", \"error\": \"x\"}\nnot json\n";
  EXPECT_THROW(stam::eval::read_records(d.file("bad.jsonl")), stam::Error);
  // A record whose top_k is not as batch writes it is named as such, not a JSON library's
  // exception (an "internal error", exit 1).
  for (const char* top_k : {"[{\"label\": \"x\"}]", "[{\"index\": \"3\"}]", "[3]", "7"}) {
    std::ofstream(d.file("odd.jsonl")) << "{\"input\": \"a\", \"top_k\": " << top_k << "}\n";
    try {
      stam::eval::read_records(d.file("odd.jsonl"));
      ADD_FAILURE() << top_k << " was read";
    } catch (const stam::Error& e) {
      EXPECT_NE(std::string(e.what()).find("line 1 is not a stam batch JSONL record"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Eval, ShardsSplitTheSetAsBatchDoes) {
  const std::vector<stam::eval::Sample> s{{"c", 0}, {"a", 1}, {"b", 2}, {"a", 1}};
  const auto first = stam::eval::select_shard(s, {0, 2});
  const auto second = stam::eval::select_shard(s, {1, 2});
  ASSERT_EQ(first.size(), 3u);  // "a" twice (both lines score), "c"
  EXPECT_EQ(first[0].input, "c");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].input, "b");
}

// ---------------------------------------------------------------- end to end

namespace {

// The tiny checkpoint's reference (PyTorch) predictions for the test videos, 8 frames:
//   arm_wrestling: 1 skydiving, 2 making tea
//   hd_1920x1080:  1 skydiving, 2 tap dancing
//   mpeg4:         1 skydiving, 2 tap dancing, 3 making tea
//   short_32:      1 skydiving, ..., 7 bowling
// The tree below puts each in a class at a chosen rank; the test first checks those ranks
// against tiny_stam_expected.json, so the expected accuracy follows from the reference alone.
struct Placed {
  std::string cls, video;
  int rank;  // of `cls` in the reference logits, from 1
};
const std::vector<Placed> kTree{
    {"skydiving", "arm_wrestling_340x256_28fps.mp4", 1},
    {"skydiving", "short_32frames_30fps.mp4", 1},
    {"tap_dancing", "hd_1920x1080_30fps.mp4", 2},
    {"making tea", "mpeg4_320x240_25fps.avi", 3},
    {"bowling", "short_32frames_30fps.mp4", 7},
};

int reference_rank(const std::string& video, const std::string& cls,
                   const std::vector<std::string>& labels) {
  std::ifstream in(fixture_path("tiny_stam_expected.json"));
  const auto logits =
      nlohmann::json::parse(in)["videos"][video]["logits"].get<std::vector<double>>();
  const int64_t want = stam::eval::find_class(cls, labels);
  return 1 + static_cast<int>(std::count_if(logits.begin(), logits.end(), [&](double v) {
           return v > logits[static_cast<size_t>(want)];
         }));
}

void make_tree(const fs::path& root) {
  for (const auto& p : kTree) {
    fs::create_directories(root / p.cls);
    fs::create_symlink(video_path(p.video), root / p.cls / p.video);
  }
  fs::create_directories(root / "abseiling");
  std::ofstream(root / "abseiling" / "broken.mp4") << "not a video";
}

std::string stam_eval(const std::string& args) {
  return shell_quote(stam_binary()) + " eval " + args + " -w " +
         shell_quote(fixture_path("tiny_stam.pth")) + " --labels " +
         shell_quote(kinetics_labels()) + " --device cpu";
}

}  // namespace

TEST(EvalCli, TreeGivesTheReferenceAccuracyAndListsTheBrokenVideo) {
  const auto labels = stam::read_labels(kinetics_labels());
  for (const auto& p : kTree) ASSERT_EQ(reference_rank(p.video, p.cls, labels), p.rank) << p.cls;

  TempDir d;
  make_tree(d.path() / "k400");
  const std::string records = shell_quote(d.file("records.jsonl"));
  auto r =
      run_command(stam_eval(shell_quote(d.file("k400")) + " -o " + records + " --format json -q"));
  EXPECT_EQ(r.exit_code, 6) << r.err;  // one input failed
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["k"], 5);
  EXPECT_EQ(j["total"], 6);
  EXPECT_EQ(j["evaluated"], 5);
  EXPECT_DOUBLE_EQ(j["top1"].get<double>(), 2.0 / 5);  // two at rank 1
  EXPECT_DOUBLE_EQ(j["topk"].get<double>(), 4.0 / 5);  // ranks 1, 1, 2, 3 of 1, 1, 2, 3, 7
  EXPECT_DOUBLE_EQ(j["mean_class_accuracy"].get<double>(), 1.0 / 4);  // skydiving 1, others 0
  ASSERT_EQ(j["failed"].size(), 1u);
  EXPECT_NE(j["failed"][0]["input"].get<std::string>().find("abseiling/broken.mp4"),
            std::string::npos);
  EXPECT_EQ(j["confusions"].size(), 3u);
  EXPECT_EQ(j["confusions"][0]["predicted"], "skydiving");

  // Everything is recorded: a resumed run labels nothing and reports the same, as text.
  auto again =
      run_command(stam_eval(shell_quote(d.file("k400")) + " -o " + records + " --resume -k 3"));
  EXPECT_EQ(again.exit_code, 2) << "other --top-k than the records: " << again.err;
  EXPECT_NE(again.err.find("top"), std::string::npos) << again.err;
  auto text = run_command(stam_eval(shell_quote(d.file("k400")) + " -o " + records + " --resume"));
  EXPECT_EQ(text.exit_code, 6) << text.err;
  EXPECT_NE(text.out.find("5 of 6 videos evaluated, 1 failed"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("top-1 40.00 %  top-5 80.00 %  mean class 25.00 %"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("bowling -> skydiving"), std::string::npos) << text.out;
  EXPECT_NE(text.err.find("0 labelled"), std::string::npos) << text.err;

  // A shard reports on its part of the set: 3 of the 6 inputs, in sorted order.
  auto shard = run_command(stam_eval(shell_quote(d.file("k400")) + " -o " + records +
                                     " --resume --shard 1/2 --format json"));
  const auto part = nlohmann::json::parse(shard.out);
  EXPECT_EQ(part["total"], 3) << shard.err;
}

TEST(EvalCli, ListAndItsMistakes) {
  TempDir d;
  std::ofstream(d.file("set.csv")) << video_path("mpeg4_320x240_25fps.avi") << ",tap_dancing\n"
                                   << d.file("missing.mp4") << ",312\n";
  auto r = run_command(stam_eval("--list " + shell_quote(d.file("set.csv")) + " -o " +
                                 shell_quote(d.file("r.jsonl")) + " -k 1"));
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.out.find("1 of 2 videos evaluated, 1 failed"), std::string::npos) << r.out;
  // -k 1: top-1 once, not twice.
  EXPECT_NE(r.out.find("top-1 0.00 %  mean class"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing.mp4"), std::string::npos) << r.out;

  // Beyond the class count every class is in the top k: the report says top-400, and why.
  auto all = run_command(stam_eval("--list " + shell_quote(d.file("set.csv")) + " -o " +
                                   shell_quote(d.file("all.jsonl")) + " -k 500"));
  EXPECT_EQ(all.exit_code, 6) << all.err;
  EXPECT_NE(all.err.find("--top-k 500 is more than the 400 classes the labels name; using 400"),
            std::string::npos)
      << all.err;
  EXPECT_NE(all.out.find("top-400 100.00 %"), std::string::npos) << all.out;

  std::ofstream(d.file("bad.csv")) << "a.mp4,underwater_basket_weaving\n";
  auto bad = run_command(stam_eval("--list " + shell_quote(d.file("bad.csv")) + " -o " +
                                   shell_quote(d.file("b.jsonl"))));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("'underwater_basket_weaving' names no class"), std::string::npos)
      << bad.err;
  EXPECT_FALSE(fs::exists(d.file("b.jsonl")));

  // As in batch: a usage error before any work, not an error record for every input.
  auto timeout = run_command("STAM_DECODE_TIMEOUT=abc " +
                             stam_eval("--list " + shell_quote(d.file("set.csv")) + " -o " +
                                       shell_quote(d.file("t.jsonl"))));
  EXPECT_EQ(timeout.exit_code, 2) << timeout.err;
  EXPECT_NE(timeout.err.find("STAM_DECODE_TIMEOUT must be a number"), std::string::npos)
      << timeout.err;
  EXPECT_FALSE(fs::exists(d.file("t.jsonl")));

  // eval's records are JSONL, and its messages name its own option.
  auto csv = run_command(stam_eval("--list " + shell_quote(d.file("set.csv")) + " -o " +
                                   shell_quote(d.file("r.csv"))));
  EXPECT_EQ(csv.exit_code, 2) << csv.err;
  EXPECT_NE(csv.err.find("eval writes JSONL records"), std::string::npos) << csv.err;
  auto nodir = run_command(stam_eval("--list " + shell_quote(d.file("set.csv")) + " -o " +
                                     shell_quote(d.file("no/r.jsonl"))));
  EXPECT_EQ(nodir.exit_code, 2) << nodir.err;
  EXPECT_NE(nodir.err.find("--records " + d.file("no/r.jsonl")), std::string::npos) << nodir.err;

  auto both = run_command(stam_eval(shell_quote(d.path().string()) + " --list " +
                                    shell_quote(d.file("set.csv")) + " -o " +
                                    shell_quote(d.file("c.jsonl"))));
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("DIR or --list"), std::string::npos) << both.err;
}
