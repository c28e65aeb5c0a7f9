// What a packager's build gets: the CMake switches packagers use, configured in a temporary
// folder (a configure takes about a second), and what `cmake --install` puts in place.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace fs = std::filesystem;
using stam::test::contains;
using stam::test::read_file;
using stam::test::run_command;
using stam::test::shell_quote;
using stam::test::source_path;
using stam::test::TempDir;

namespace {

stam::test::CommandResult configure(const TempDir& build, const std::string& options) {
  return run_command("cmake -S " + shell_quote(source_path("")) + " -B " +
                     shell_quote(build.path().string()) + " " + options);
}

}  // namespace

// debhelper and packagers pass -DBUILD_TESTING=OFF and expect no test dependency: GoogleTest is
// not even looked for.
TEST(Packaging, BuildTestingOffBuildsWithoutGoogleTest) {
  TempDir build;
  const auto r = configure(build, "-DBUILD_TESTING=OFF -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(read_file(build.file("CMakeCache.txt")), "STAM_BUILD_TESTS:BOOL=OFF"));
}

// With STAM_SEARCH_SOURCE_TREE=OFF the source tree's path is not compiled into the binary: the
// one source file that gets the model folders is given an empty one.
TEST(Packaging, TheSourceTreeSearchCanBeLeftOut) {
  const auto files_command = [](const std::string& options) {
    TempDir build;
    const auto r =
        configure(build, "-DSTAM_BUILD_TESTS=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON " + options);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& entry :
         nlohmann::json::parse(read_file(build.file("compile_commands.json")))) {
      if (entry["file"] == source_path("src/model/files.cpp"))
        return entry["command"].get<std::string>();
    }
    ADD_FAILURE() << "no compile command for src/model/files.cpp";
    return std::string();
  };
  const std::string source_models = source_path("models");
  EXPECT_TRUE(contains(files_command(""), "STAM_SOURCE_MODELS_DIR=\\\"" + source_models));
  const std::string off = files_command("-DSTAM_SEARCH_SOURCE_TREE=OFF");
  EXPECT_TRUE(contains(off, "STAM_SOURCE_MODELS_DIR=\\\"\\\"")) << off;
  EXPECT_FALSE(contains(off, source_models)) << off;
}

// README presents the cluster scripts as tools: an install has them, runnable, and the licence.
TEST(Packaging, InstallHasTheScriptsAndTheLicence) {
  TempDir prefix;
  // This build's folder: the one stam is built in.
  const std::string build = fs::path(stam::test::stam_binary()).parent_path().string();
  const auto r = run_command("cmake --install " + shell_quote(build) + " --prefix " +
                             shell_quote(prefix.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* program :
       {"bin/stam", "share/stam/models/download_models.sh", "share/stam/scripts/merge_outputs.sh",
        "share/stam/scripts/slurm_batch.sh"}) {
    const auto perms = fs::status(prefix.file(program)).permissions();
    EXPECT_TRUE(fs::is_regular_file(prefix.file(program)) &&
                (perms & fs::perms::others_exec) != fs::perms::none)
        << program;
  }
  EXPECT_EQ(read_file(prefix.file("share/stam/scripts/k8s_indexed_job.yaml")),
            read_file(source_path("scripts/k8s_indexed_job.yaml")));
  EXPECT_EQ(read_file(prefix.file("share/doc/stam/LICENSE")), read_file(source_path("LICENSE")));
  EXPECT_TRUE(fs::exists(prefix.file("share/stam/models/kinetics400_labels.txt")));
}
