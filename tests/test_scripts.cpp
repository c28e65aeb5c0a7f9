// scripts/merge_outputs.sh and scripts/slurm_batch.sh, on outputs and settings written here
// (stam batch's own outputs go through them in test_batch_cli.cpp); scripts/setup.sh, test.sh
// and download_models.sh, against stand-ins for the tools they call.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

using stam::test::contains;
using stam::test::read_file;
using stam::test::run_command;
using stam::test::shell_quote;
using stam::test::source_path;
using stam::test::TempDir;
using stam::test::write_file;

namespace {

stam::test::CommandResult merge(const std::string& merged, const std::vector<std::string>& parts) {
  std::string cmd =
      shell_quote(source_path("scripts/merge_outputs.sh")) + " " + shell_quote(merged);
  for (const auto& p : parts) cmd += " " + shell_quote(p);
  return run_command(cmd);
}

// The settings file stam batch writes beside OUT, with `frames`, `precision_used` and the
// precision asked for varied.
void write_settings(const std::string& out, int frames, const std::string& used,
                    const std::string& precision = "auto") {
  nlohmann::ordered_json s = {{"weights", "stam_16.pth"}, {"weights_bytes", 476904477},
                              {"frames", frames},         {"top_k", 1},
                              {"precision", precision},   {"precision_used", used}};
  write_file(out + ".meta.json", s.dump(2) + "\n");
}

const char* const kHeader = "input,label_1,score_1,warnings,error\n";

}  // namespace

// A carriage return in a name is quoted by stam; the merge keeps each row's bytes, so the
// merged file is still one row per input and merges again.
TEST(MergeOutputs, CsvRowsAreCopiedByteForByte) {
  TempDir d;
  const std::string odd = "\"odd/cr\rhere.mp4\",abseiling,0.5,,\n";
  const std::string plain = "b.mp4,,,,\"'b.mp4': file is empty\"\n";
  write_file(d.file("a.csv"), std::string(kHeader) + odd);
  write_file(d.file("b.csv"), std::string(kHeader) + plain);
  auto r = merge(d.file("m.csv"), {d.file("a.csv"), d.file("b.csv")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(d.file("m.csv")), std::string(kHeader) + plain + odd);  // sorted by input
  r = merge(d.file("m2.csv"), {d.file("m.csv")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(d.file("m2.csv")), read_file(d.file("m.csv")));
}

TEST(MergeOutputs, OutputsOfOtherSettingsAreRefused) {
  TempDir d;
  write_file(d.file("a.jsonl"), "{\"input\":\"a.mp4\",\"frames\":8}\n");
  write_file(d.file("b.jsonl"), "{\"input\":\"b.mp4\",\"frames\":4}\n");
  write_settings(d.file("a.jsonl"), 8, "fp32");
  write_settings(d.file("b.jsonl"), 4, "fp32");
  auto r = merge(d.file("m.jsonl"), {d.file("a.jsonl"), d.file("b.jsonl")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "frames: 8 in " + d.file("a.jsonl") + ", 4 in " + d.file("b.jsonl")))
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(d.file("m.jsonl")));
}

// The merged output carries the common settings, so `--resume` on it checks them; the precision
// `auto` chose is kept when every output agrees and only reported when they do not.
TEST(MergeOutputs, TheMergedOutputGetsTheCommonSettings) {
  TempDir d;
  write_file(d.file("a.jsonl"), "{\"input\":\"a.mp4\"}\n");
  write_file(d.file("b.jsonl"), "{\"input\":\"b.mp4\"}\n");
  write_settings(d.file("a.jsonl"), 8, "bf16");
  write_settings(d.file("b.jsonl"), 8, "bf16");
  write_file(d.file("m.jsonl.meta.json"), "{\"frames\": 64}\n");  // a stale one
  auto r = merge(d.file("m.jsonl"), {d.file("a.jsonl"), d.file("b.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(d.file("m.jsonl.meta.json"))),
            nlohmann::json::parse(read_file(d.file("a.jsonl.meta.json"))));

  write_settings(d.file("b.jsonl"), 8, "fp32");
  r = merge(d.file("m.jsonl"), {d.file("a.jsonl"), d.file("b.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "other precisions")) << r.err;
  const auto s = nlohmann::json::parse(read_file(d.file("m.jsonl.meta.json")));
  EXPECT_FALSE(s.contains("precision_used")) << s;
  EXPECT_EQ(s["frames"], 8);

  // An output without settings: nothing to check them against, so none are written.
  std::filesystem::remove(d.file("b.jsonl.meta.json"));
  r = merge(d.file("m.jsonl"), {d.file("a.jsonl"), d.file("b.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "no settings file beside " + d.file("b.jsonl"))) << r.err;
  EXPECT_FALSE(std::filesystem::exists(d.file("m.jsonl.meta.json")));
}

// As `batch --resume` takes it, `auto` stands for what it chose: `auto` that chose fp32 and an
// explicit fp32 made the same records; an explicit precision `auto` did not choose is another.
TEST(MergeOutputs, AutoIsThePrecisionItChose) {
  TempDir d;
  write_file(d.file("a.jsonl"), "{\"input\":\"a.mp4\"}\n");
  write_file(d.file("b.jsonl"), "{\"input\":\"b.mp4\"}\n");
  write_settings(d.file("a.jsonl"), 8, "fp32");
  write_settings(d.file("b.jsonl"), 8, "fp32", "fp32");
  auto r = merge(d.file("m.jsonl"), {d.file("a.jsonl"), d.file("b.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(d.file("m.jsonl.meta.json")))["precision_used"],
            "fp32");

  write_settings(d.file("b.jsonl"), 8, "bf16", "bf16");
  r = merge(d.file("m.jsonl"), {d.file("a.jsonl"), d.file("b.jsonl")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(
      r.err, "precision: 'auto' in " + d.file("a.jsonl") + ", 'bf16' in " + d.file("b.jsonl")))
      << r.err;
}

TEST(MergeOutputs, BadInputsAreNamedWithoutATraceback) {
  TempDir d;
  write_file(d.file("good.jsonl"), "{\"input\":\"a.mp4\"}\n");
  write_file(d.file("bad.jsonl"), "{\"input\":\"a.mp4\"}\n{\"input\": oops}\n");
  struct Case {
    std::string merged;
    std::vector<std::string> parts;
    std::string says;
  };
  for (const Case& c :
       {Case{d.file("m.jsonl"),
             {d.file("good.jsonl"), d.file("missing.jsonl")},
             "cannot read " + d.file("missing.jsonl") + ": No such file or directory"},
        Case{d.file("m.jsonl"), {d.file("bad.jsonl")}, d.file("bad.jsonl") + ":2 is not a JSON"},
        Case{d.file("no/m.jsonl"), {d.file("good.jsonl")}, "does not exist"}}) {
    auto r = merge(c.merged, c.parts);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, c.says)) << r.err;
    EXPECT_FALSE(contains(r.err, "Traceback")) << r.err;
  }
}

// The shard each array task runs, read off the command it starts (a stand-in for stam).
TEST(SlurmBatch, ShardsFollowTheArrayOrStamShards) {
  TempDir d;
  const std::string fake = d.file("fake_stam");
  write_file(fake, "#!/bin/sh\necho \"$@\"\n");
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  const auto task = [&](const std::string& env) {
    return run_command("env STAM=" + shell_quote(fake) + " " + env + " bash " +
                       shell_quote(source_path("scripts/slurm_batch.sh")) + " " +
                       shell_quote(d.file("res")) + " /data/clips");
  };
  // --array=1-16: shards count from the array's first index.
  auto r = task("SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=16");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "--shard 4/16 ")) << r.out;
  // STAM_SHARDS=16 sbatch --array=3,7: task 7 is shard 7, not the second of two tasks.
  r = task("STAM_SHARDS=16 SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=3 SLURM_ARRAY_TASK_COUNT=2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "--shard 7/16 ")) << r.out;
  EXPECT_TRUE(contains(r.out, "shard-7-of-16.jsonl")) << r.out;
  r = task(
      "STAM_SHARDS=16 SLURM_ARRAY_TASK_ID=16 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_COUNT=17");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_TRUE(contains(r.err, "task 16 is no shard of 16")) << r.err;

  // Where no stam is installed (the Quick start only builds build/stam), say how to name it,
  // rather than bash's "stam: command not found" (127).
  r = run_command("env STAM=" + shell_quote(d.file("no_such_stam")) +
                  " SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=1 bash " +
                  shell_quote(source_path("scripts/slurm_batch.sh")) + " " +
                  shell_quote(d.file("res")) + " /data/clips");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "set STAM=/path/to/build/stam")) << r.err;
}

namespace {

// A folder of stand-ins for the system's tools, put first on the PATH of the scripts it runs.
// With `only` named, the PATH is that folder alone: the script reaches the fakes written here
// and the real tools in `only`, never the system's package manager or build tools.
class FakeTools {
 public:
  explicit FakeTools(const std::vector<std::string>& only = {}) {
    std::filesystem::create_directories(bin());
    for (const auto& dir : {dir_.path().string(), bin()})
      std::filesystem::permissions(dir, kEveryoneRuns);
    path_ = bin();
    if (only.empty()) path_ += std::string(":") + std::getenv("PATH");
    for (const auto& tool : only) {
      const auto where = run_command("command -v " + tool);
      std::filesystem::create_symlink(where.out.substr(0, where.out.find('\n')),
                                      bin() + "/" + tool);
    }
  }
  // A shell script `name` running `body`, which anyone may run.
  void fake(const std::string& name, const std::string& body) const {
    write_file(bin() + "/" + name, "#!/bin/sh\n" + body + "\n");
    std::filesystem::permissions(bin() + "/" + name, kEveryoneRuns);
  }
  std::string bin() const { return dir_.file("bin"); }
  std::string log() const { return dir_.file("log"); }  // where fakes write what they were asked
  // `command` (through env, so it may start with another command that runs the script), without
  // the STAM_UNITY=1 that CI exports: each test gives the scripts' switches it checks.
  stam::test::CommandResult run(const std::string& command, const std::string& env = "") const {
    return run_command("env -u STAM_UNITY PATH=" + shell_quote(path_) + " " + env + " " + command);
  }
  static constexpr auto kEveryoneRuns =
      std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
      std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
      std::filesystem::perms::others_exec;

 private:
  TempDir dir_;
  std::string path_;
};

}  // namespace

// Nothing is installed (dpkg-query finds no package) and apt-get only writes down its arguments.
TEST(SetupScript, DeveloperPackagesAreOptIn) {
  FakeTools tools({"bash", "dirname", "grep", "env"});
  tools.fake("dpkg-query", "exit 1");
  tools.fake("id", "echo 0");
  tools.fake("apt-get", "echo \"$@\" >>" + shell_quote(tools.log()));
  tools.fake("cmake", "true");
  const char* const dev[] = {"clang-14",      "libclang-rt-14-dev", "llvm-14",
                             "python3-numpy", "slurm-wlm",          "munge"};

  auto r = tools.run(shell_quote(source_path("scripts/setup.sh")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string asked = read_file(tools.log());
  EXPECT_TRUE(contains(asked, "install -y --no-install-recommends build-essential ")) << asked;
  for (const char* p : dev) EXPECT_FALSE(contains(asked, std::string(" ") + p)) << p;

  std::filesystem::remove(tools.log());
  r = tools.run(shell_quote(source_path("scripts/setup.sh")), "STAM_DEV_DEPS=1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  asked = read_file(tools.log());
  for (const char* p : dev)
    EXPECT_TRUE(contains(asked, std::string(" ") + p)) << p << "\n" << asked;
}

// Not root and no sudo: say what to do, rather than bash's "sudo: command not found" (127).
TEST(SetupScript, WithoutRootOrSudoItSaysWhatToDo) {
  FakeTools tools({"bash", "dirname", "grep"});
  tools.fake("dpkg-query", "exit 1");
  tools.fake("id", "echo 1000");
  const auto r = tools.run(shell_quote(source_path("scripts/setup.sh")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "run as root or install sudo")) << r.err;
}

// A build/ configured without the tests (BUILD_TESTING=OFF) gets them back, and a run that finds
// no test fails instead of passing.
TEST(TestScript, BuildsTheTestsAndFailsWithoutAny) {
  FakeTools tools({"bash", "dirname"});
  tools.fake("cmake", "echo cmake \"$@\" >>" + shell_quote(tools.log()));
  tools.fake("ctest", "echo ctest \"$@\" >>" + shell_quote(tools.log()));
  const auto r = tools.run(shell_quote(source_path("scripts/test.sh")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string asked = read_file(tools.log());
  EXPECT_TRUE(
      contains(asked, "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTAM_BUILD_TESTS=ON\n"))
      << asked;
  EXPECT_TRUE(contains(asked, "ctest --test-dir build --output-on-failure --no-tests=error "))
      << asked;
}

namespace {

const char* const kUrl16 =
    "https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/STAM/v2/stam_16.pth";

std::string download_script() {
  return shell_quote(source_path("scripts/download_models.sh"));
}

// A curl that "downloads" $DOWNLOAD (as `curl -fL --retry 3 -o OUT URL`), and writes down URL.
void fake_curl(const FakeTools& tools) {
  tools.fake("curl", "for a; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\necho \"$a\" >>" +
                         shell_quote(tools.log()) + "\ncp \"$DOWNLOAD\" \"$out\"");
}

}  // namespace

// A download is checked before it takes the file's name: one that does not load is deleted, so
// the next run downloads it again instead of calling it present.
TEST(DownloadModels, OnlyADownloadThatLoadsIsKept) {
  FakeTools tools;
  fake_curl(tools);
  TempDir models;
  write_file(models.file("truncated"), "truncated download");
  const std::string env = "STAM=" + shell_quote(stam::test::stam_binary()) +
                          " STAM_MODELS_DIR=" + shell_quote(models.file("dir"));
  for (int run = 0; run < 2; ++run) {
    auto r = tools.run(download_script() + " 16",
                       env + " DOWNLOAD=" + shell_quote(models.file("truncated")));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(contains(r.out, "downloading from " + std::string(kUrl16))) << r.out;
    EXPECT_TRUE(contains(r.err, "does not load (deleted)")) << r.err;
    EXPECT_TRUE(contains(r.err, "hand and save it as " + models.file("dir/stam_16.pth"))) << r.err;
    EXPECT_TRUE(std::filesystem::is_empty(models.file("dir"))) << "neither the file nor its .part";
  }

  auto r = tools.run(download_script() + " 16",
                     env + " DOWNLOAD=" + shell_quote(stam::test::fixture_path("tiny_stam.pth")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "stam_16.pth: loads")) << r.out;
  EXPECT_EQ(read_file(models.file("dir/stam_16.pth")),
            read_file(stam::test::fixture_path("tiny_stam.pth")));
  EXPECT_FALSE(std::filesystem::exists(models.file("dir/stam_16.pth.part")));
}

// A failed download names what it tried and where a copy fetched some other way belongs.
TEST(DownloadModels, AFailedDownloadSaysWhereAHandDownloadedCopyGoes) {
  FakeTools tools;
  tools.fake("curl", "echo 'curl: (6) Could not resolve host' >&2; exit 6");
  TempDir models;
  const auto r = tools.run(download_script() + " 16",
                           "STAM_MODELS_DIR=" + shell_quote(models.path().string()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "download of " + std::string(kUrl16) +
                                  " failed; download it by hand and save it as " +
                                  models.file("stam_16.pth")))
      << r.err;
  EXPECT_TRUE(std::filesystem::is_empty(models.path()));
}

TEST(DownloadModels, HelpIsUsageNotAModelSize) {
  FakeTools tools;
  fake_curl(tools);
  for (const char* flag : {"-h", "--help", "16 --help"}) {
    const auto r = tools.run(download_script() + " " + flag);
    EXPECT_EQ(r.exit_code, 0) << flag << ": " << r.err;
    EXPECT_TRUE(contains(r.out, "usage: ")) << flag << ": " << r.out;
    EXPECT_EQ(r.err, "") << flag;
  }
  EXPECT_FALSE(std::filesystem::exists(tools.log())) << "nothing downloaded";
}

// An installed share/stam/models belongs to root: a user's downloads go to their own folder,
// while a file already in the shared one counts as present.
TEST(DownloadModels, AFolderTheUserCannotWriteGivesWayToTheirOwn) {
  namespace fs = std::filesystem;
  FakeTools tools;
  fake_curl(tools);
  tools.fake("stam", "exit 0");  // every file loads
  TempDir d;
  fs::permissions(d.path(), FakeTools::kEveryoneRuns);

  // Where STAM_MODELS_DIR says is where the user wants the files: no other folder is taken.
  write_file(d.file("file"), "");
  auto r =
      tools.run(download_script() + " 16", "STAM_MODELS_DIR=" + shell_quote(d.file("file/models")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cannot write to STAM_MODELS_DIR=" + d.file("file/models"))) << r.err;

  std::string as_user;  // root writes anywhere: the script then runs as nobody
  if (::geteuid() == 0) {
    as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    if (run_command(as_user + "true").exit_code != 0) GTEST_SKIP() << "cannot run as nobody";
  }
  const std::string share = d.file("share/stam/models"), home = d.file("home");
  fs::create_directories(share);
  fs::create_directories(home);
  for (const auto& dir : {d.file("share"), d.file("share/stam"), share})
    fs::permissions(dir, FakeTools::kEveryoneRuns);
  fs::permissions(home, fs::perms::all);
  fs::copy_file(source_path("scripts/download_models.sh"), share + "/download_models.sh");
  write_file(share + "/stam_8.pth", "weights");
  write_file(d.file("download"), "weights");
  const auto read_only = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                         fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec;
  fs::permissions(share, read_only);

  r = tools.run(as_user + shell_quote(share + "/download_models.sh") + " 8 16",
                "HOME=" + shell_quote(home) +
                    " XDG_DATA_HOME= STAM_MODELS_DIR= STAM=" + shell_quote(tools.bin() + "/stam") +
                    " DOWNLOAD=" + shell_quote(d.file("download")));
  fs::permissions(share, fs::perms::owner_all | read_only);  // so that it can be deleted
  const std::string own = home + "/.local/share/stam/models";
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, share + " is not writable: downloading into " + own)) << r.out;
  EXPECT_TRUE(contains(r.out, "stam_8.pth: already present")) << r.out;
  EXPECT_EQ(read_file(own + "/stam_16.pth"), "weights");
  EXPECT_FALSE(fs::exists(own + "/stam_8.pth"));
}
