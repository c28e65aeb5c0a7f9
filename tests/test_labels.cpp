// The labels file: class names one a line, and every way it can be wrong.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "labels.hpp"
#include "stam/error.hpp"
#include "test_util.hpp"

namespace {

std::string write(const stam::test::TempDir& d, const std::string& name, const std::string& text) {
  const std::string path = d.file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    stam::read_labels(path);
    FAIL() << path << " was read";
  } catch (const stam::ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what << " lacks " << needle;
  }
}

}  // namespace

TEST(Labels, ReadsTheShippedKineticsList) {
  const auto labels = stam::read_labels(stam::test::source_path("models/kinetics400_labels.txt"));
  ASSERT_EQ(labels.size(), 400u);
  EXPECT_EQ(labels.front(), "abseiling");
  EXPECT_EQ(labels.back(), "zumba");
}

TEST(Labels, CrLfAndTrailingBlankLinesAreTolerated) {
  stam::test::TempDir d;
  const auto labels = stam::read_labels(write(d, "l.txt", "a b\r\nc\r\n\n\n"));
  EXPECT_EQ(labels, (std::vector<std::string>{"a b", "c"}));
}

// Notepad's UTF-8 starts with a byte order mark; it is not part of the first class's name.
TEST(Labels, AByteOrderMarkIsNoPartOfTheFirstName) {
  stam::test::TempDir d;
  const auto labels = stam::read_labels(write(d, "bom.txt",
                                              "\xEF\xBB\xBF"
                                              "abseiling\r\nzumba\r\n"));
  EXPECT_EQ(labels, (std::vector<std::string>{"abseiling", "zumba"}));
  expect_error(write(d, "bom_only.txt", "\xEF\xBB\xBF\n"), "empty");
}

TEST(Labels, BadFilesAreRefusedNamingTheProblem) {
  stam::test::TempDir d;
  expect_error(d.file("missing.txt"), "no such labels file");
  expect_error(d.path().string(), "not a regular file");
  expect_error(write(d, "empty.txt", "\n\n"), "empty");
  expect_error(write(d, "blank.txt", "a\n\nb\n"), "line 2 is blank");
  expect_error(write(d, "long.txt", "a\n" + std::string(5000, 'x') + "\n"), "line 2 is 5000 bytes");
  // 17 MiB of short lines: refused from its size, before anything is read.
  expect_error(write(d, "huge.txt", std::string(17u << 20, '\n')), "too large");
}
