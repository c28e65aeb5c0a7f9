// stam batch without a model: input listing, sharding, records, resume parsing, progress, and
// the run loop driven by a fake engine.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "batch/batch.hpp"
#include "batch/plan.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using stam::test::lines_of;
using stam::test::read_file;
using stam::test::TempDir;
using stam::test::write_file;

// In stam::batch rather than beside a using-directive: a unity build (CI's) puts the next test
// file in this one's translation unit, where the directive would reach it too.
namespace stam::batch {
namespace {

std::string rel(const TempDir& d, const std::string& p) {
  return fs::path(p).lexically_relative(d.path()).string();
}

// ---------------------------------------------------------------- inputs

TEST(BatchInputs, ExtensionsParseAndMatchCaseInsensitively) {
  EXPECT_EQ(parse_extensions(" mp4, .AVI ,mkv,"), (std::vector<std::string>{"mp4", "avi", "mkv"}));
  EXPECT_THROW(parse_extensions(" , "), UsageError);
  EXPECT_THROW(parse_extensions(""), UsageError);
  for (const char* bad : {"*.mp4", "mp4,*.avi", "m?v", "clips/mp4", "tar.gz", "mp 4"}) {
    try {
      parse_extensions(bad);
      ADD_FAILURE() << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("letters and digits"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_extensions("M2TS,3gp"), (std::vector<std::string>{"m2ts", "3gp"}));
  const auto exts = parse_extensions("mp4,avi");
  EXPECT_TRUE(has_extension("a/b.MP4", exts));
  EXPECT_TRUE(has_extension("a.b/c.avi", exts));
  EXPECT_FALSE(has_extension("a.mp4/c", exts));
  EXPECT_FALSE(has_extension("a/mp4", exts));
  EXPECT_FALSE(has_extension("a/b.mp4.txt", exts));
}

// A tree with videos at several depths, other files, dot-files and a dot-directory.
struct Tree {
  TempDir dir;
  Tree() {
    for (const char* f : {"b.mp4", "A.MP4", "c d.mkv", "notes.txt", "sub/e.avi", "sub/deep/f.webm",
                          "sub/g.json", ".hidden.mp4", "._h.mp4", ".cache/i.mp4"})
      write_file(dir.file(f), "x");
  }
  InputSet collect(bool recursive) const {
    InputSpec spec;
    spec.paths = {dir.path().string()};
    spec.recursive = recursive;
    std::istringstream no_stdin;
    return collect_inputs(spec, no_stdin);
  }
};

TEST(BatchInputs, FlatWalkTakesVideosOnlyAndCountsTheRest) {
  Tree t;
  InputSet s = t.collect(false);
  std::vector<std::string> got;
  for (const auto& p : s.inputs) got.push_back(rel(t.dir, p));
  EXPECT_EQ(got, (std::vector<std::string>{"A.MP4", "b.mp4", "c d.mkv"}));  // byte-wise order
  EXPECT_EQ(s.ignored, 3);          // notes.txt, .hidden.mp4, ._h.mp4
  EXPECT_EQ(s.unsearched_dirs, 1);  // sub (.cache is hidden, not a hint)
}

TEST(BatchInputs, RecursiveWalkDescendsButNotIntoDotDirectories) {
  Tree t;
  InputSet s = t.collect(true);
  std::vector<std::string> got;
  for (const auto& p : s.inputs) got.push_back(rel(t.dir, p));
  EXPECT_EQ(
      got, (std::vector<std::string>{"A.MP4", "b.mp4", "c d.mkv", "sub/deep/f.webm", "sub/e.avi"}));
  EXPECT_EQ(s.ignored, 4);  // + sub/g.json
  EXPECT_EQ(s.unsearched_dirs, 0);
}

TEST(BatchInputs, ExplicitFilesAndListsAreTakenAsIsSortedAndDeduplicated) {
  TempDir d;
  write_file(d.file("clip.dat"), "x");
  write_file(d.file("list.txt"), "z/missing.mp4\r\n\n  \ny/frames_dir\r\n" + d.file("clip.dat"));
  InputSpec spec;
  spec.paths = {d.file("clip.dat")};
  spec.lists = {d.file("list.txt"), "-"};
  std::istringstream in("a/from stdin.mp4\nz/missing.mp4\n");
  InputSet s = collect_inputs(spec, in);
  EXPECT_EQ(s.inputs, (std::vector<std::string>{d.file("clip.dat"), "a/from stdin.mp4",
                                                "y/frames_dir", "z/missing.mp4"}));
}

TEST(BatchInputs, AFramesFolderWithATrailingSlashIsOneInput) {
  TempDir d;
  write_file(d.file("list.txt"), "tree/frames\ntree/frames/\n./tree//frames/./\n/\n");
  InputSpec spec;
  spec.lists = {d.file("list.txt")};
  std::istringstream no_stdin;
  InputSet s = collect_inputs(spec, no_stdin);
  EXPECT_EQ(s.inputs, (std::vector<std::string>{"/", "tree/frames"}));
  // Across shards too: one of two shards gets it.
  EXPECT_EQ(select_shard(s.inputs, {1, 2}), (std::vector<std::string>{"tree/frames"}));
  // Records written with the slash (before it was dropped) match on --resume.
  EXPECT_EQ(stored_record_key("tree/frames/"), record_key("tree/frames"));
  EXPECT_EQ(record_key("tree/frames/"), "tree/frames");
}

TEST(BatchInputs, MissingInputOrListIsAUsageError) {
  std::istringstream in;
  InputSpec spec;
  spec.paths = {"/no/such/dir"};
  EXPECT_THROW(collect_inputs(spec, in), UsageError);
  spec.paths.clear();
  spec.lists = {"/no/such/list.txt"};
  EXPECT_THROW(collect_inputs(spec, in), UsageError);
}

TEST(BatchShard, ParsesAndValidates) {
  Shard s = parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad :
       {"5/5", "1/0", "-1/3", "1", "a/3", "1/3/4", "$SLURM_ARRAY_TASK_ID/4", "", "/3", "1/"})
    EXPECT_THROW(parse_shard(bad), UsageError) << bad;
}

TEST(BatchShard, ShardsAreDisjointAndCoverEverything) {
  std::vector<std::string> all;
  for (int i = 0; i < 23; ++i) all.push_back("v" + std::to_string(100 + i));
  for (int n : {1, 2, 3, 7, 30}) {
    std::multiset<std::string> seen;
    for (int k = 0; k < n; ++k)
      for (const auto& p : select_shard(all, {k, n})) seen.insert(p);
    EXPECT_EQ(seen, std::multiset<std::string>(all.begin(), all.end())) << n;
  }
  EXPECT_EQ(select_shard(all, {1, 10}), (std::vector<std::string>{"v101", "v111", "v121"}));
}

// ---------------------------------------------------------------- records

TEST(BatchRecords, CsvQuotingFollowsRfc4180) {
  EXPECT_EQ(csv_field("plain/path.mp4"), "plain/path.mp4");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(csv_field("sp ace"), "\"sp ace\"");
  EXPECT_EQ(csv_field("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(csv_header(2), "input,label_1,score_1,label_2,score_2,warnings,error\n");
  EXPECT_EQ(csv_header(2, false), "input,label_1,score_1,label_2,score_2,error\n");
}

TEST(BatchRecords, CsvParserRoundTripsAndFindsTheTornTail) {
  const std::vector<std::string> row = {"a,b", "q\"uote", "multi\r\nline", "", "caf\xc3\xa9 x"};
  std::string text;
  for (size_t i = 0; i < row.size(); ++i) text += (i ? "," : "") + csv_field(row[i]);
  text += "\r\nnext,row\n";
  CsvRows p = parse_csv(text + "\"torn,fie");
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[0], row);
  EXPECT_EQ(p.rows[1], (std::vector<std::string>{"next", "row"}));
  EXPECT_EQ(p.complete_bytes, text.size());
  EXPECT_THROW(parse_csv("a\"b,c\n"), UsageError);
  EXPECT_THROW(parse_csv("\"a\"b,c\n"), UsageError);
}

Result fake_result(const std::string& input, const std::string& label = "abseiling") {
  Result r;
  r.input = input;
  r.frames = 4;
  r.top_k = {{0, label, 0.75}, {1, "air drumming", 0.125}};
  r.device = "cpu";
  r.precision = "fp32";
  return r;
}

TEST(BatchRecords, WarningsGoInTheirOwnColumnAndJsonKey) {
  Result r = fake_result("cut.mkv");
  r.warnings = {
      "the header says 300 frames but only 10 could be decoded (the file is cut short "
      "or damaged)",
      "the video is too short for 4 samples: only 3 distinct frames, some used more "
      "than once"};
  RecordWriter csv(Format::kCsv, 2, false);
  CsvRows rows = parse_csv(csv.header() + csv.result(r) + csv.result(fake_result("ok.mp4")));
  ASSERT_EQ(rows.rows.size(), 3u);
  EXPECT_EQ(rows.rows[1],
            (std::vector<std::string>{"cut.mkv", "abseiling", "0.75", "air drumming", "0.125",
                                      r.warnings[0] + "; " + r.warnings[1], ""}));
  EXPECT_EQ(rows.rows[2][5], "");  // a clean video: an empty warnings field
  EXPECT_EQ(parse_csv(csv.error("x.mp4", "bad")).rows[0].size(), 7u);

  RecordWriter jsonl(Format::kJsonl, 2, false);
  auto j = nlohmann::json::parse(jsonl.result(r));
  EXPECT_EQ(j["warnings"], nlohmann::json(r.warnings));
  EXPECT_FALSE(nlohmann::json::parse(jsonl.result(fake_result("ok.mp4"))).contains("warnings"));
}

TEST(BatchRecords, JsonlRecordsAreSingleLinesWithTheClassifySchema) {
  RecordWriter w(Format::kJsonl, 2, false);
  EXPECT_EQ(w.header(), "");
  std::string line = w.result(fake_result("dir/with\nnewline.mp4"));
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["input"], "dir/with\nnewline.mp4");
  EXPECT_EQ(j["top_k"][0]["label"], "abseiling");
  EXPECT_TRUE(j.contains("timings_ms"));
  auto e = nlohmann::json::parse(w.error("bad.mp4", "not a video"));
  EXPECT_EQ(e, (nlohmann::json{{"input", "bad.mp4"}, {"error", "not a video"}}));
}

TEST(BatchRecords, CsvRowsPadMissingLabelsAndCarryErrors) {
  RecordWriter w(Format::kCsv, 3, false);
  EXPECT_EQ(w.result(fake_result("a b.mp4")),
            "\"a b.mp4\",abseiling,0.75,\"air drumming\",0.125,,,,\n");
  EXPECT_EQ(w.error("x.mp4", "broken, badly"), "x.mp4,,,,,,,,\"broken, badly\"\n");
}

TEST(BatchRecords, InvalidUtf8NamesAreEscapedAndStayApart) {
  const std::string odd = "clip\xff.mp4";
  EXPECT_EQ(record_key(odd), "clip\\xFF.mp4");
  // Latin-1 names that U+FFFD would have merged.
  EXPECT_NE(record_key("caf\xe9.mp4"), record_key("caf\xe8.mp4"));
  for (const std::string valid : {"ok.mp4", "caf\xc3\xa9.mp4", "\xe2\x82\xac \xf0\x9f\x8e\xac.mkv"})
    EXPECT_EQ(record_key(valid), valid);
  // Overlong forms, a surrogate, past U+10FFFF, a stray continuation byte, a cut sequence.
  EXPECT_EQ(record_key("\xc0\x80"), "\\xC0\\x80");
  EXPECT_EQ(record_key("\xed\xa0\x80"), "\\xED\\xA0\\x80");
  EXPECT_EQ(record_key("\xf4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");
  EXPECT_EQ(record_key("a\x80"
                       "b"),
            "a\\x80b");
  EXPECT_EQ(record_key("a\xe2\x82"), "a\\xE2\\x82");
  // A name that spells another's escape stays apart from it: its backslash is escaped too.
  EXPECT_EQ(record_key("caf\\xE9.mp4"), "caf\\x5CxE9.mp4");
  EXPECT_NE(record_key("caf\\xE9.mp4"), record_key("caf\xe9.mp4"));
  RecordWriter w(Format::kJsonl, 2, false);
  EXPECT_EQ(nlohmann::json::parse(w.error(odd, "e"))["input"], record_key(odd));
}

TEST(BatchRecords, FormatFollowsTheOutputExtension) {
  EXPECT_EQ(parse_format("", "out/x.CSV"), Format::kCsv);
  EXPECT_EQ(parse_format("", "out/x.jsonl"), Format::kJsonl);
  EXPECT_EQ(parse_format("jsonl", "x.csv"), Format::kJsonl);
  EXPECT_THROW(parse_format("xml", "x"), UsageError);
}

// ---------------------------------------------------------------- output file

TEST(BatchOutput, ScanFindsDoneInputsAndATornTail) {
  TempDir d;
  RecordWriter w(Format::kJsonl, 2, false);
  const std::string whole = w.result(fake_result("a.mp4")) + "\n" + w.error("b.mp4", "bad") +
                            w.error("c.mp4", "bad") + w.result(fake_result("c.mp4"));
  write_file(d.file("o.jsonl"), whole + "{\"input\":\"d.mp4\",\"top");
  ExistingOutput e = scan_output(d.file("o.jsonl"), Format::kJsonl, 2);
  EXPECT_TRUE(e.exists);
  EXPECT_EQ(e.valid_bytes, whole.size());
  EXPECT_EQ(e.records, 4);
  EXPECT_EQ(e.error_records, 2);
  EXPECT_EQ(e.done, (std::unordered_map<std::string, bool>{
                        {"a.mp4", true}, {"b.mp4", false}, {"c.mp4", true}}));
  EXPECT_FALSE(scan_output(d.file("none.jsonl"), Format::kJsonl, 2).exists);
}

TEST(BatchOutput, RefusesFilesThatAreNotOurs) {
  TempDir d;
  write_file(d.file("a.jsonl"), "{\"input\":\"a\"}\nhello world\n{\"input\":\"b\"}\n");
  EXPECT_THROW(scan_output(d.file("a.jsonl"), Format::kJsonl, 2), Error);
  write_file(d.file("b.jsonl"), "important notes");
  EXPECT_THROW(scan_output(d.file("b.jsonl"), Format::kJsonl, 2), Error);
  write_file(d.file("c.csv"), csv_header(5) + "a.mp4,,,,,,,,,,,,x\n");
  EXPECT_NO_THROW(scan_output(d.file("c.csv"), Format::kCsv, 5));
  EXPECT_THROW(scan_output(d.file("c.csv"), Format::kCsv, 3), Error);  // other --top-k
  write_file(d.file("d.csv"), "name,size\nx,1\n");
  EXPECT_THROW(scan_output(d.file("d.csv"), Format::kCsv, 5), Error);
}

TEST(BatchOutput, CsvScanHandlesQuotedNewlinesAndATornHeader) {
  TempDir d;
  RecordWriter w(Format::kCsv, 1, false);
  const std::string whole = w.header() + w.result(fake_result("a\nb.mp4")) + w.error("c.mp4", "e");
  write_file(d.file("o.csv"), whole + "\"d\nhalf");
  ExistingOutput e = scan_output(d.file("o.csv"), Format::kCsv, 1);
  EXPECT_TRUE(e.has_header);
  EXPECT_EQ(e.valid_bytes, whole.size());
  EXPECT_EQ(e.done, (std::unordered_map<std::string, bool>{{"a\nb.mp4", true}, {"c.mp4", false}}));
  write_file(d.file("p.csv"), "input,lab");
  ExistingOutput p = scan_output(d.file("p.csv"), Format::kCsv, 1);
  EXPECT_FALSE(p.has_header);
  EXPECT_EQ(p.valid_bytes, 0u);
}

TEST(BatchOutput, RewriteDropsTheErrorsToRedoAndTheTornTailAtomically) {
  TempDir d;
  for (Format f : {Format::kJsonl, Format::kCsv}) {
    RecordWriter w(f, 2, false);
    const std::string path = d.file(f == Format::kCsv ? "o.csv" : "o.jsonl");
    const std::string ok_a = w.result(fake_result("a.mp4")), ok_c = w.result(fake_result("c.mp4"));
    const std::string other = w.error("e.mp4", "not redone");
    write_file(path, w.header() + ok_a + w.error("b.mp4", "bad") + ok_c + other +
                         w.error("./d", "x") + "{");
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);  // a private output
    EXPECT_EQ(rewrite_without_errors(path, f, 2, {"b.mp4", "d"}), 2);
    EXPECT_EQ(read_file(path), w.header() + ok_a + ok_c + other);
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write)
        << "the rewritten file is as private as the old one";
    for (const auto& entry : fs::directory_iterator(d.path()))  // no temporary left behind
      EXPECT_EQ(entry.path().filename().string().find(".stam-tmp"), std::string::npos);
  }
}

TEST(BatchOutput, AppendsAndRefusesASecondWriter) {
  TempDir d;
  const std::string path = d.file("o.jsonl");
  EXPECT_THROW(OutputFile(d.file("new/dir/o.jsonl")), Error);  // creates the file, not folders
  EXPECT_FALSE(std::filesystem::exists(d.file("new")));
  OutputFile out(path);
  out.append("{\"input\":\"a\"}\n");
  out.sync();
  EXPECT_THROW(OutputFile second(path), Error);
  EXPECT_EQ(read_file(path), "{\"input\":\"a\"}\n");
  EXPECT_THROW(OutputFile("/proc/no/such/o.jsonl"), Error);
}

TEST(BatchOutput, AFailedAppendLeavesOnlyWholeRecords) {
  TempDir d;
  const std::string path = d.file("o.jsonl"), first = "{\"input\":\"a\"}\n";
  OutputFile out(path);
  out.append(first);
  // A file size limit plays a disk that fills up: the write stops part way, then fails (EFBIG,
  // where a full disk gives ENOSPC).
  struct rlimit before {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
  struct rlimit limit = before;
  limit.rlim_cur = first.size() + 6;
  const auto handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  try {
    out.append("{\"input\":\"b\",\"error\":\"longer than the room left\"}\n");
    ADD_FAILURE() << "the write past the limit succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ends with its last whole record"), std::string::npos)
        << e.what();
  }
  setrlimit(RLIMIT_FSIZE, &before);
  std::signal(SIGXFSZ, handler);
  EXPECT_EQ(read_file(path), first);
  out.append("{\"input\":\"c\"}\n");  // the next record starts on a line of its own
  EXPECT_EQ(read_file(path), first + "{\"input\":\"c\"}\n");
}

// ---------------------------------------------------------------- progress

TEST(BatchProgress, FormatsRateEtaAndFailures) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(125), "2:05");
  EXPECT_EQ(format_duration(3725), "1:02:05");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(Progress::format(25, 100, 0, 10.0, 4), "[#...]  25/100  2.50 videos/s  ETA 0:30");
  EXPECT_EQ(Progress::format(0, 10, 2, 0, 0), "0/10  0.00 videos/s  ETA ?  2 failed");
  EXPECT_EQ(Progress::format(0, 1, 0, 0, 0, "dir/clip.mp4"),
            "0/1  0.00 videos/s  ETA ?  decoding clip.mp4");
  // Control characters in a name are shown escaped, not sent to the terminal.
  const std::string shown =
      Progress::format(0, 1, 0, 0, 0, "d/a\nb\x1b]0;X\x07\x7f\xff caf\xc3\xa9.mp4");
  EXPECT_EQ(shown,
            "0/1  0.00 videos/s  ETA ?  decoding a\\x0Ab\\x1B]0;X\\x07\\x7F\\xFF caf\xc3\xa9.mp4");
  EXPECT_EQ(std::count_if(shown.begin(), shown.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
            0);
  EXPECT_EQ(Progress::choose(true, true), Progress::Mode::kOff);
  EXPECT_EQ(Progress::choose(false, true), Progress::Mode::kBar);
  EXPECT_EQ(Progress::choose(false, false), Progress::Mode::kLines);
}

// ---------------------------------------------------------------- plan

// An output that holds a result for "a.mp4" and only errors for "b.mp4".
ExistingOutput holding_a_result_and_an_error() {
  ExistingOutput existing;
  existing.exists = true;
  existing.done = {{"a.mp4", true}, {"b.mp4", false}};
  return existing;
}

TEST(BatchPlan, SkipsWhatTheOutputHoldsAndCountsItsErrors) {
  std::vector<std::string> checked;
  const auto check = [&](const std::string& input) { checked.push_back(input); };
  const Plan p =
      plan_work({"./a.mp4", "b.mp4", "c.mp4"}, holding_a_result_and_an_error(), {}, false, check);
  EXPECT_EQ(p.pending, (std::vector<std::string>{"c.mp4"}));
  EXPECT_TRUE(p.refused.empty());
  EXPECT_EQ(p.skipped, 2);  // ./a.mp4 is the input a.mp4 recorded
  EXPECT_EQ(p.old_errors, 1);
  EXPECT_EQ(p.todo(), 1);
  EXPECT_EQ(checked, (std::vector<std::string>{"c.mp4"})) << "only what is left is checked";
}

TEST(BatchPlan, RetryErrorsTakesInputsWithOnlyErrorsBack) {
  const Plan p = plan_work({"a.mp4", "b.mp4", "c.mp4"}, holding_a_result_and_an_error(), {}, true,
                           [](const std::string&) {});
  EXPECT_EQ(p.pending, (std::vector<std::string>{"b.mp4", "c.mp4"}));
  EXPECT_EQ(p.skipped, 1);  // a result is never redone
  EXPECT_EQ(p.old_errors, 0);
}

TEST(BatchPlan, RefusesUnreadableFoldersAndWhatTheCheckRefuses) {
  std::vector<std::string> checked;
  const auto check = [&](const std::string& input) {
    checked.push_back(input);
    if (input.find("missing") != std::string::npos)
      throw InputError(input + ": no such file or directory");
  };
  const std::map<std::string, std::string> unreadable = {{"dir", "permission denied"},
                                                         {"b.mp4", "permission denied"}};
  const Plan p = plan_work({"a_missing.mp4", "b.mp4", "dir", "e.mp4"},
                           holding_a_result_and_an_error(), unreadable, false, check);
  EXPECT_EQ(p.pending, (std::vector<std::string>{"e.mp4"}));
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"a_missing.mp4", "a_missing.mp4: no such file or directory"},
      {"dir", "dir: permission denied"}};
  EXPECT_EQ(p.refused, refused);
  EXPECT_EQ(p.skipped, 1);  // b.mp4's error record stands: no --retry-errors
  EXPECT_EQ(p.todo(), 3);
  EXPECT_EQ(checked, (std::vector<std::string>{"a_missing.mp4", "e.mp4"}))
      << "an unreadable folder is refused without a check";

  // With --retry-errors the unreadable b.mp4 is refused again, not skipped.
  const Plan retried = plan_work({"b.mp4"}, holding_a_result_and_an_error(), unreadable, true,
                                 [](const std::string&) {});
  EXPECT_EQ(retried.refused.size(), 1u);
  EXPECT_EQ(retried.skipped, 0);
}

TEST(BatchPlan, OtherErrorsOfTheCheckAreNotRefusals) {
  const auto check = [](const std::string&) { throw std::runtime_error("no memory"); };
  EXPECT_THROW(plan_work({"c.mp4"}, ExistingOutput{}, {}, false, check), std::runtime_error);
}

// ---------------------------------------------------------------- run with a fake engine

// Decodes nothing: inputs named "*bad*" fail in prepare, "*boom*" fail in infer; the label is
// the file's stem. Can ask the run to stop after `stop_after` records.
class FakeEngine : public Engine {
 public:
  struct Log {
    std::mutex mu;
    std::vector<size_t> batch_sizes;
    std::atomic<int> inferred{0};
    std::atomic<int> prepared{0};
    int64_t clip_bytes = 12;  // of pixels, which are never read (nor, uninitialised, resident)
  };
  FakeEngine(Log& log, int stop_after, Precision precision)
      : log_(log), stop_after_(stop_after), precision_(precision) {}

  Preparer preparer() const override {
    return [&log = log_](const std::string& input) {
      ++log.prepared;
      if (input.find("bad") != std::string::npos) throw InputError(input + ": cannot decode");
      Clip c;
      c.input = input;
      c.pixels = torch::empty({log.clip_bytes}, torch::kByte);
      return c;
    };
  }
  Precision precision() const override { return precision_; }
  std::vector<Result> infer(const std::vector<Clip>& clips) override {
    {
      std::lock_guard<std::mutex> lock(log_.mu);
      log_.batch_sizes.push_back(clips.size());
    }
    std::vector<Result> out;
    for (const auto& c : clips) {
      if (c.input.find("boom") != std::string::npos) throw std::runtime_error("model exploded");
      out.push_back(fake_result(c.input, fs::path(c.input).stem().string()));
      out.back().precision = to_string(precision_);
    }
    if (stop_after_ > 0 && (log_.inferred += static_cast<int>(clips.size())) >= stop_after_)
      request_stop();
    return out;
  }

 private:
  Log& log_;
  int stop_after_;
  Precision precision_;
};

struct FakeRun {
  TempDir dir;
  FakeEngine::Log log;
  Options opts;
  int loads = 0;
  // The precision the engine chooses when the run asks for none, and what each load was asked.
  Precision precision = Precision::kFp32;
  std::vector<std::optional<Precision>> asked;
  // Run by the factory after it has offered the preparer, before it returns: the model "loads".
  std::function<void()> while_loading;

  explicit FakeRun(int n, Format f = Format::kJsonl) {
    std::string list;
    for (int i = 0; i < n; ++i) list += "v" + std::to_string(100 + i) + ".mp4\n";
    list += "v_bad.mp4\nv_boom.mp4\n";
    write_file(dir.file("list.txt"), list);
    opts.inputs.lists = {dir.file("list.txt")};
    opts.output = dir.file(f == Format::kCsv ? "out.csv" : "out.jsonl");
    opts.top_k = 2;
    opts.resume_command = "stam batch --resume";
    // The inputs are names, not files: "*missing*" plays a path check_input refuses.
    opts.check_input = [](const std::string& input) {
      if (input.find("missing") != std::string::npos)
        throw InputError(input + ": no such file or directory");
    };
  }
  Summary go(int stop_after = 0) {
    clear_stop();
    std::istringstream no_stdin;
    Summary s = run(
        opts,
        [&](const EngineRequest& request) {
          ++loads;
          asked.push_back(request.resumed_precision);
          auto engine = std::make_unique<FakeEngine>(log, stop_after,
                                                     request.resumed_precision.value_or(precision));
          if (request.preparer_ready) request.preparer_ready(engine->preparer());
          if (while_loading) while_loading();
          return engine;
        },
        no_stdin);
    clear_stop();
    return s;
  }
  // input -> label or "ERR"; fails the test on a duplicate.
  std::map<std::string, std::string> records() {
    std::map<std::string, std::string> m;
    for (const auto& line : lines_of(read_file(opts.output))) {
      auto j = nlohmann::json::parse(line);
      std::string v = j.contains("error") ? "ERR" : j["top_k"][0]["label"].get<std::string>();
      EXPECT_TRUE(m.emplace(j["input"], v).second) << "duplicate " << j["input"];
    }
    return m;
  }
};

TEST(BatchRun, LabelsEveryInputAndRecordsFailures) {
  FakeRun r(10);
  r.opts.batch_size = 3;
  Summary s = r.go();
  EXPECT_EQ(s.total, 12);
  EXPECT_EQ(s.labelled, 10);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.exit_code, static_cast<int>(Exit::kPartial));
  auto m = r.records();
  ASSERT_EQ(m.size(), 12u);
  EXPECT_EQ(m["v105.mp4"], "v105");
  EXPECT_EQ(m["v_bad.mp4"], "ERR");
  EXPECT_EQ(m["v_boom.mp4"], "ERR");  // its batch neighbours were retried alone and labelled
  for (size_t b : r.log.batch_sizes) EXPECT_LE(b, 3u);
}

TEST(BatchRun, RefusesToClobberUnlessResumeOrOverwrite) {
  FakeRun r(3);
  r.go();
  EXPECT_THROW(r.go(), UsageError);
  r.opts.overwrite = true;
  EXPECT_EQ(r.go().labelled, 3);
  EXPECT_EQ(r.records().size(), 5u);
  r.opts.resume = true;
  EXPECT_THROW(r.go(), UsageError);  // both
  r.opts.resume = false;
  r.opts.retry_errors = true;  // implies --resume
  EXPECT_THROW(r.go(), UsageError);
  EXPECT_EQ(r.records().size(), 5u);
}

TEST(BatchRun, ResumeAfterAStopCompletesWithoutDuplicates) {
  FakeRun r(20);
  r.opts.decode_workers = 2;
  Summary first = r.go(/*stop_after=*/5);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.exit_code, 130);
  EXPECT_LT(first.labelled + first.failed, 22);
  r.opts.resume = true;
  Summary second = r.go();
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(second.skipped, first.labelled + first.failed);
  EXPECT_EQ(r.records().size(), 22u);
  // Nothing left: the model is not even loaded, and old errors still give exit 6.
  const int loads = r.loads;
  Summary third = r.go();
  EXPECT_EQ(r.loads, loads);
  EXPECT_EQ(third.skipped, 22);
  EXPECT_EQ(third.old_errors, 2);
  EXPECT_EQ(third.exit_code, static_cast<int>(Exit::kPartial));
}

TEST(BatchRun, RetryErrorsRedoesOnlyTheErrors) {
  FakeRun r(4, Format::kCsv);
  r.go();
  // "Fix" the broken file: it now decodes (the list is rewritten, the key stays the same).
  write_file(r.dir.file("list.txt"), "v100.mp4\nv101.mp4\nv102.mp4\nv103.mp4\nv_boom.mp4\n");
  r.opts.retry_errors = true;
  Summary s = r.go();
  EXPECT_EQ(s.skipped, 4);
  EXPECT_EQ(s.failed, 1);  // boom fails again
  const std::string csv = read_file(r.opts.output);
  CsvRows rows = parse_csv(csv);
  ASSERT_EQ(rows.rows.size(), 7u);  // header + 4 + bad + boom once: its old record is gone
  EXPECT_EQ(rows.complete_bytes, csv.size());
  std::multiset<std::string> inputs;
  for (size_t i = 1; i < rows.rows.size(); ++i) inputs.insert(rows.rows[i][0]);
  EXPECT_EQ(inputs.size(), 6u);
  EXPECT_EQ(inputs.count("v_boom.mp4"), 1u);
  EXPECT_EQ(inputs.count("v_bad.mp4"), 1u);  // no longer listed, not retried: its record stays
}

TEST(BatchRun, RetryErrorsKeepsTheErrorRecordsOfOtherShards) {
  // A merged output: the inputs of every shard, two of them (bad, boom) with error records.
  FakeRun r(4);
  r.go();
  const std::string merged = read_file(r.opts.output);
  // The shard holding v_bad only (sorted: v100..v103, v_bad, v_boom; shard 1/3: v101, v_bad).
  r.opts.shard = {1, 3};
  r.opts.retry_errors = true;
  Summary s = r.go();
  EXPECT_EQ(s.total, 2);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_EQ(s.failed, 1);  // bad fails again
  auto m = r.records();    // fails on a duplicate
  EXPECT_EQ(m.size(), 6u);
  EXPECT_EQ(m["v_boom.mp4"], "ERR") << "an error record of another shard was removed";
  EXPECT_EQ(m["v_bad.mp4"], "ERR");
  // Nothing of this shard to redo: the file is left as it is.
  write_file(r.opts.output, merged);
  r.opts.shard = {0, 3};  // v100, v103
  EXPECT_EQ(r.go().skipped, 2);
  EXPECT_EQ(read_file(r.opts.output), merged);
}

TEST(BatchRun, AStopWhileTheModelLoadsLeavesTheOutputAsItWas) {
  FakeRun r(3);
  r.go();
  const std::string before = read_file(r.opts.output);
  const std::string meta = read_file(settings_path(r.opts.output));
  r.while_loading = [] { request_stop(); };
  for (bool overwrite : {true, false}) {
    r.opts.overwrite = overwrite;
    r.opts.retry_errors = !overwrite;  // would remove the error records of bad and boom
    Summary s = r.go();
    EXPECT_TRUE(s.interrupted) << overwrite;
    EXPECT_EQ(s.exit_code, 130) << overwrite;
    EXPECT_EQ(s.labelled + s.failed, 0) << overwrite;
    EXPECT_EQ(read_file(r.opts.output), before) << overwrite;
    EXPECT_EQ(read_file(settings_path(r.opts.output)), meta) << overwrite;
  }
}

TEST(BatchRun, ResumeRepairsATornLastLine) {
  FakeRun r(3);
  r.go();
  { std::ofstream(r.opts.output, std::ios::app) << "{\"input\":\"v101.mp4\",\"fra"; }
  r.opts.resume = true;
  Summary s = r.go();
  EXPECT_EQ(s.skipped, 5);
  EXPECT_EQ(r.records().size(), 5u);  // parses every line: the torn one is gone
}

TEST(BatchRun, ShardsSplitTheWork) {
  FakeRun r(10);
  std::map<std::string, std::string> all;
  for (int k = 0; k < 3; ++k) {
    r.opts.shard = {k, 3};
    r.opts.output = r.dir.file("shard" + std::to_string(k) + ".jsonl");
    Summary s = r.go();
    EXPECT_EQ(s.total, 4);
    for (const auto& [input, label] : r.records()) EXPECT_TRUE(all.emplace(input, label).second);
  }
  EXPECT_EQ(all.size(), 12u);
}

TEST(BatchRun, DecodingStartsWhileTheModelLoads) {
  FakeRun r(3);
  bool early = false;
  r.while_loading = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (r.log.prepared == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    early = r.log.prepared > 0;
  };
  Summary s = r.go();
  EXPECT_TRUE(early) << "nothing was decoded before the model had loaded";
  EXPECT_EQ(s.labelled, 3);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(r.log.prepared, 5) << "each input once";
}

// Where `count` settles once it has reached `at_least`: unchanged for 200 ms.
int settled(const std::atomic<int>& count, int at_least) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (count < at_least && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int seen = -1; seen != count;) {
    seen = count;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return count;
}

// Lets this process start one more thread but not two: a new thread's stack is 1 GiB of address
// space, and the address space may grow by 1.5 GiB.
void room_for_one_more_thread() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{1} << 30);
  pthread_setattr_default_np(&attr);
  pthread_attr_destroy(&attr);
  std::ifstream status("/proc/self/status");
  rlim_t vm_kb = 0;
  for (std::string key; status >> key;)
    if (key == "VmSize:") status >> vm_kb;
  const rlim_t limit = vm_kb * 1024 + (rlim_t{3} << 29);
  const rlimit as{limit, limit};
  setrlimit(RLIMIT_AS, &as);
}

// Exits with 7 and the run's error when its second decode thread cannot start.
[[noreturn]] void run_where_one_decode_thread_can_start() {
  FakeRun r(3);
  r.opts.decode_workers = 3;
  room_for_one_more_thread();
  try {
    r.go();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(7);
  }
  std::_Exit(0);
}

// The threads already started are stopped and joined, and the run fails with an error; before,
// the started threads were destroyed joinable: std::terminate.
TEST(BatchRunDeathTest, ADecodeThreadThatCannotStartIsAnError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: only this test's threads
  EXPECT_EXIT(run_where_one_decode_thread_can_start(), testing::ExitedWithCode(7),
              "cannot start decode worker 2 of 3");
}

// -b 4096 let 2 x 4096 + W clips wait for the model: ~20 GB of 16-frame clips.
TEST(BatchRun, TheDecodeQueueHoldsAtMostItsBytes) {
  FakeRun r(20);
  r.opts.batch_size = 64;  // 2 x 64 + 1 clips by count
  r.opts.decode_workers = 1;
  r.log.clip_bytes = kDecodeQueueBytes / 4;
  int decoded = 0;
  // While the model loads the queue fills, and then the worker waits with one more clip.
  r.while_loading = [&] { decoded = settled(r.log.prepared, 5); };
  Summary s = r.go();
  EXPECT_EQ(decoded, 5) << "4 clips fill the queue's bytes, a 5th waits to go in";
  EXPECT_EQ(s.labelled, 20);
}

TEST(BatchRun, InputsAnotherRunRecordsDuringTheLoadAreNotRedone) {
  FakeRun r(4);
  r.opts.resume = true;
  r.while_loading = [&] {
    // Another run labels v100 and v101 while this one loads (and may be decoding them).
    const RecordWriter other(Format::kJsonl, 2, false, true);
    write_file(r.opts.output, other.result(fake_result("v100.mp4", "other")) +
                                  other.result(fake_result("v101.mp4", "other")));
  };
  Summary s = r.go();
  EXPECT_EQ(s.skipped, 2);
  EXPECT_EQ(s.labelled, 2);
  EXPECT_EQ(s.failed, 2);
  auto m = r.records();  // fails on a duplicate
  EXPECT_EQ(m.size(), 6u);
  EXPECT_EQ(m["v100.mp4"], "other");
  EXPECT_EQ(m["v103.mp4"], "v103");
}

TEST(BatchSettings, AutoIsThePrecisionItChose) {
  Settings recorded = {{"frames", 4}, {"precision", "auto"}, {kPrecisionUsed, "bf16"}};
  const auto now = [](const char* precision) {
    return Settings{{"frames", 4}, {"precision", precision}};
  };
  EXPECT_EQ(settings_differences(recorded, now("bf16")), std::vector<std::string>{});
  EXPECT_EQ(settings_differences(recorded, now("auto")), std::vector<std::string>{});
  EXPECT_EQ(settings_differences(recorded, now("fp32")),
            std::vector<std::string>{"precision: auto in the output, fp32 now"});
  recorded[kPrecisionUsed] = "fp32";
  EXPECT_EQ(settings_differences(recorded, now("fp32")), std::vector<std::string>{});
  EXPECT_EQ(settings_differences(recorded, now("bf16")).size(), 1u);
  // An explicit bf16 resumed with `auto`: auto takes the recorded bf16.
  Settings explicit_bf16 = {{"frames", 4}, {"precision", "bf16"}, {kPrecisionUsed, "bf16"}};
  EXPECT_EQ(settings_differences(explicit_bf16, now("auto")), std::vector<std::string>{});
  EXPECT_EQ(settings_differences(explicit_bf16, now("fp16")).size(), 1u);
  // Without precision_used (an older output) `auto` may choose anything: still a difference.
  recorded.erase(kPrecisionUsed);
  EXPECT_EQ(settings_differences(recorded, now("fp32")).size(), 1u);

  // A run under `auto` that chose bf16, resumed with --precision bf16.
  FakeRun r(2);
  r.opts.settings = now("auto");
  r.precision = Precision::kBf16;
  r.go();
  write_file(r.dir.file("list.txt"), "v100.mp4\nv101.mp4\nv102.mp4\n");
  r.opts.settings = now("bf16");
  r.opts.resume = true;
  EXPECT_EQ(r.go().labelled, 1);
  EXPECT_EQ(read_settings(settings_path(r.opts.output)),
            (Settings{{"frames", 4}, {"precision", "auto"}, {kPrecisionUsed, "bf16"}}));
  r.opts.settings = now("fp32");
  EXPECT_THROW(r.go(), UsageError);
}

TEST(BatchSettings, FingerprintsTellFilesOfOneNameAndSizeApart) {
  TempDir d;
  const std::string legacy = d.file("legacy/stam.pth"), labels = d.file("labels.txt");
  fs::create_directories(d.file("legacy"));
  fs::copy_file(stam::test::fixture_path("tiny_stam_legacy.pth"), legacy);
  fs::copy_file(stam::test::source_path("models/kinetics400_labels.txt"), labels);
  ModelOptions model;
  model.weights = legacy;
  model.labels = labels;
  model.frames = 4;
  const Settings before = model_settings(model, false);
  EXPECT_EQ(before["weights_fingerprint"].get<std::string>().rfind("sampled-fnv1a64:", 0), 0u);
  EXPECT_EQ(before["labels_fingerprint"].get<std::string>().rfind("fnv1a64:", 0), 0u);
  // One byte of the last tensor, one letter of a label: same names, same sizes.
  {
    std::fstream f(legacy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');
    std::string text = read_file(labels);
    text[0] = text[0] == 'a' ? 'b' : 'a';
    write_file(labels, text);
  }
  const Settings after = model_settings(model, false);
  EXPECT_EQ(after["weights_bytes"], before["weights_bytes"]);
  EXPECT_EQ(after["labels_bytes"], before["labels_bytes"]);
  EXPECT_EQ(settings_differences(before, after),
            (std::vector<std::string>{
                "weights_fingerprint: " + before["weights_fingerprint"].get<std::string>() +
                    " in the output, " + after["weights_fingerprint"].get<std::string>() + " now",
                "labels_fingerprint: " + before["labels_fingerprint"].get<std::string>() +
                    " in the output, " + after["labels_fingerprint"].get<std::string>() + " now"}));
  // A zip checkpoint: its records' CRC-32s.
  model.weights = stam::test::fixture_path("tiny_stam.pth");
  EXPECT_EQ(model_settings(model, false)["weights_fingerprint"].get<std::string>().rfind(
                "zip-crc32-fnv1a64:", 0),
            0u);
}

TEST(BatchSettings, ASettingsFileWithoutFingerprintsGetsThemAdded) {
  FakeRun r(2);
  r.opts.settings = {{"frames", 4}, {"labels_bytes", 10}};
  r.go();
  write_file(r.dir.file("list.txt"), "v100.mp4\nv101.mp4\nv102.mp4\n");
  r.opts.settings["labels_fingerprint"] = "fnv1a64:1";
  r.opts.resume = true;
  EXPECT_EQ(r.go().labelled, 1);  // not refused: the output recorded none
  const Settings meta = read_settings(settings_path(r.opts.output));
  EXPECT_EQ(meta["labels_fingerprint"], "fnv1a64:1");
  EXPECT_EQ(meta[kPrecisionUsed], "fp32");
  // Now it has one: another is refused, naming it.
  write_file(r.dir.file("list.txt"), "v100.mp4\nv101.mp4\nv102.mp4\nv103.mp4\n");
  r.opts.settings["labels_fingerprint"] = "fnv1a64:2";
  try {
    r.go();
    ADD_FAILURE() << "resumed with another labels file";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("labels_fingerprint: fnv1a64:1 in the output, "
                                         "fnv1a64:2 now"),
              std::string::npos)
        << e.what();
  }
}

TEST(BatchRun, AResumedRunIsAskedForThePrecisionOfItsRecords) {
  FakeRun r(2);
  r.precision = Precision::kBf16;  // what `auto` chooses on the first machine
  r.go();
  const std::string meta = settings_path(r.opts.output);
  EXPECT_EQ(read_settings(meta)[kPrecisionUsed], "bf16");
  ASSERT_EQ(r.asked.size(), 1u);
  EXPECT_FALSE(r.asked[0].has_value()) << "a new output: the engine chooses";

  write_file(r.dir.file("list.txt"), "v100.mp4\nv101.mp4\nv102.mp4\n");
  r.opts.resume = true;
  r.precision = Precision::kFp32;  // and on the machine that resumes it
  EXPECT_EQ(r.go().labelled, 1);
  ASSERT_EQ(r.asked.size(), 2u);
  EXPECT_TRUE(r.asked[1] == Precision::kBf16);
  EXPECT_EQ(nlohmann::json::parse(lines_of(read_file(r.opts.output)).back())["precision"], "bf16");

  // Settings written before the record: the run chooses, and records what it chose.
  Settings older = read_settings(meta);
  older.erase(kPrecisionUsed);
  write_settings(meta, older);
  write_file(r.dir.file("list.txt"), "v100.mp4\nv101.mp4\nv102.mp4\nv103.mp4\n");
  r.go();
  ASSERT_EQ(r.asked.size(), 3u);
  EXPECT_FALSE(r.asked[2].has_value());
  EXPECT_EQ(read_settings(meta)[kPrecisionUsed], "fp32");

  // A value that is no precision is refused before anything loads, naming the file.
  older[kPrecisionUsed] = "fp64";
  write_settings(meta, older);
  write_file(r.dir.file("list.txt"), "v104.mp4\n");
  try {
    r.go();
    ADD_FAILURE() << "resumed with precision_used fp64";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(meta), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fp64"), std::string::npos) << e.what();
  }
  EXPECT_EQ(r.asked.size(), 3u);
}

}  // namespace

TEST(BatchRun, RefusedInputsAreRecordedWithoutDecodingOrLoadingTheModel) {
  FakeRun r(2);
  write_file(r.dir.file("list.txt"), "v100.mp4\nv_missing.mp4\nv101.mp4\n");
  Summary s = r.go();
  EXPECT_EQ(s.labelled, 2);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.exit_code, static_cast<int>(Exit::kPartial));
  EXPECT_EQ(r.records(),
            (std::map<std::string, std::string>{
                {"v100.mp4", "v100"}, {"v101.mp4", "v101"}, {"v_missing.mp4", "ERR"}}));
  EXPECT_EQ(r.loads, 1);

  // Nothing left but refused inputs: their errors are recorded and the model never loads.
  FakeRun none(0);
  write_file(none.dir.file("list.txt"), "a_missing.mp4\nb_missing.mp4\n");
  Summary n = none.go();
  EXPECT_EQ(n.failed, 2);
  EXPECT_EQ(n.exit_code, static_cast<int>(Exit::kPartial));
  EXPECT_EQ(none.loads, 0);
  EXPECT_EQ(none.records().size(), 2u);
}

TEST(BatchRun, ResumingACsvWithoutTheWarningsColumnKeepsItsLayout) {
  // An output of stam before the column: header and rows without `warnings`.
  FakeRun r(2, Format::kCsv);
  const std::string old_header = csv_header(2, false);
  const std::string old_row =
      RecordWriter(Format::kCsv, 2, false, false).result(fake_result("v100.mp4", "v100"));
  write_file(r.opts.output, old_header + old_row);
  EXPECT_FALSE(scan_output(r.opts.output, Format::kCsv, 2).warnings_column);
  r.opts.resume = true;
  Summary s = r.go();
  EXPECT_EQ(s.skipped, 1);
  EXPECT_EQ(s.labelled, 1);
  CsvRows rows = parse_csv(read_file(r.opts.output));
  ASSERT_EQ(rows.rows.size(), 5u);  // header, v100 (old), v101, v_bad, v_boom
  EXPECT_EQ(read_file(r.opts.output).substr(0, old_header.size()), old_header);
  for (const auto& row : rows.rows) EXPECT_EQ(row.size(), 6u) << row.front();

  // --retry-errors rewrites the file: still the old columns.
  r.opts.retry_errors = true;
  r.go();
  EXPECT_EQ(read_file(r.opts.output).substr(0, old_header.size()), old_header);
  for (const auto& row : parse_csv(read_file(r.opts.output)).rows) EXPECT_EQ(row.size(), 6u);
}

TEST(BatchSignals, AfterAStopTheHandlerOutlivesTheGuard) {
  // A second SIGTERM in the teardown after a stopped run must still mean 130: with the default
  // action back in place it killed the process (143), as one CI run saw.
  struct sigaction before {
  }, before_int{}, now{};
  sigaction(SIGTERM, nullptr, &before);
  sigaction(SIGINT, nullptr, &before_int);
  { SignalGuard g; }
  sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, before.sa_handler) << "a run that was not stopped restores";
  {
    SignalGuard g;
    request_stop();
  }
  sigaction(SIGTERM, nullptr, &now);
  EXPECT_NE(now.sa_handler, before.sa_handler) << "a stopped run keeps its handler";
  EXPECT_NE(now.sa_handler, SIG_DFL);
  clear_stop();
  sigaction(SIGTERM, &before, nullptr);
  sigaction(SIGINT, &before_int, nullptr);
}

}  // namespace stam::batch
