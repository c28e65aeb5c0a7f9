#include "suggest.hpp"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace stam::cli {

namespace {

// Every spelling of `app`'s own options, with their dashes.
std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options()) {
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
  }
  return names;
}

// The closest candidate, when it is close enough to be what was meant.
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(1, std::min<size_t>(2, word.size() / 3)) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string with_hint(std::string message, const std::string& guess) {
  return guess.empty() ? message : message + "; did you mean '" + guess + "'?";
}

bool is_number(const std::string& s) {
  return s.size() > 1 && std::all_of(s.begin() + 1, s.end(),
                                     [](unsigned char c) { return std::isdigit(c) || c == '.'; });
}

}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment distance over three rolling rows.
  std::vector<size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], before[j - 2] + 1);
    }
    before.swap(prev);
    prev.swap(cur);
  }
  return prev[b.size()];
}

std::string suggest_fix(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* sub = nullptr;
  const std::vector<std::string> global = option_names(app);
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-' && !is_number(arg)) {
      // "--name=value" is checked by its name, "-vv" or "-k5" by its first letter.
      const std::string name = arg[1] == '-' ? arg.substr(0, arg.find('=')) : arg.substr(0, 2);
      std::vector<std::string> known = sub ? option_names(*sub) : std::vector<std::string>{};
      known.insert(known.end(), global.begin(), global.end());
      if (std::find(known.begin(), known.end(), name) == known.end())
        return with_hint("unknown option '" + name + "'", closest(name, known));
      continue;
    }
    if (sub) continue;  // an option's value or a positional
    std::vector<std::string> commands;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (s->get_name() == arg) sub = s;
      commands.push_back(s->get_name());
    }
    if (!sub) {
      const std::string guess = closest(arg, commands);
      std::string list;
      for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
      return guess.empty() ? "unknown command '" + arg + "' (commands: " + list + ")"
                           : with_hint("unknown command '" + arg + "'", guess);
    }
  }
  return "";
}

}  // namespace stam::cli
