// What a packager's build gets: the CMake switches packagers use, configured in a temporary
// folder (a configure takes about a second).
#include <gtest/gtest.h>

#include "test_util.hpp"

using stam::test::read_file;
using stam::test::run_command;
using stam::test::shell_quote;
using stam::test::source_path;
using stam::test::TempDir;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

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
