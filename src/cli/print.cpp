#include "print.hpp"

#include <unistd.h>

#include <iostream>

#include "output.hpp"

namespace stam::cli {

void print_json(const nlohmann::ordered_json& value) {
  std::cout << dump_json(value, ::isatty(STDOUT_FILENO) ? 2 : -1) << std::endl;
}

void print_line(const std::string& line) {
  std::cout << line << std::endl;
}

void print(const std::string& format, const Renderings& r) {
  if (format == "json")
    print_json(r.json());
  else
    std::cout << (format == "csv" ? r.csv() : r.text()) << std::flush;
}

}  // namespace stam::cli
