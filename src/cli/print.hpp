#pragma once
// The one place a command's results reach standard output, in the --format asked for.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace stam::cli {

// A JSON value as jq prints it: indented for a person at a terminal, one compact line for a
// program. Flushed.
void print_json(const nlohmann::ordered_json& value);

// One line of a stream of results (stam stream), flushed at once so a reader sees it.
void print_line(const std::string& line);

// One document in each format a command offers; a format it does not offer is left empty (its
// --format check refuses it before any work).
struct Renderings {
  std::function<nlohmann::ordered_json()> json;
  std::function<std::string()> text;
  std::function<std::string()> csv;
};
// Prints the rendering `format` ("json", "text" or "csv") names. Flushed.
void print(const std::string& format, const Renderings& r);

}  // namespace stam::cli
