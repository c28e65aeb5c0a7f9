// Accuracy from ground truth and batch records: the metrics behind `stam eval`.
#include "eval.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "batch/batch.hpp"
#include "output.hpp"
#include "stam/error.hpp"

namespace fs = std::filesystem;

namespace stam::eval {

namespace {

std::string normalised(const std::string& name) {
  std::string out;
  for (char c : name)
    out += c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The first `show` items joined by `separator`, then " and 4 more".
std::string listed(const std::vector<std::string>& items, const std::string& separator,
                   size_t show) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < show; ++i) s += (i ? separator : "") + items[i];
  if (items.size() > show) s += " and " + std::to_string(items.size() - show) + " more";
  return s;
}

// "'a', 'b', 'c' and 4 more"
std::string quoted_list(const std::vector<std::string>& names, size_t show = 10) {
  std::vector<std::string> quoted;
  for (const auto& name : names) quoted.push_back("'" + name + "'");
  return listed(quoted, ", ", show);
}

bool all_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// `field` as one RFC 4180 quoted field ("making tea", a quote inside written twice): its text, or
// nullopt when it is not exactly one such field.
std::optional<std::string> unquoted(const std::string& field) {
  if (field.size() < 2 || field.front() != '"' || field.back() != '"') return std::nullopt;
  std::string text;
  for (size_t i = 1; i + 1 < field.size(); ++i) {
    if (field[i] == '"' && (i + 2 >= field.size() || field[++i] != '"')) return std::nullopt;
    text += field[i];
  }
  return text;
}

// A `path,label` line cut in two: the label follows the last comma, spaces around it trimmed, or
// it is one quoted field (as stam's own CSV writes it), which may hold commas.
struct ListLine {
  std::string path, label;
  std::string problem;  // why the line is not `path,label` ("" when it is)
};

ListLine split_list_line(const std::string& line) {
  const size_t last = line.rfind(',');
  if (last == std::string::npos || last == 0) return {"", "", " is not 'path,label'"};
  const std::string after_last = trimmed(line.substr(last + 1));
  const bool opens = !after_last.empty() && after_last.front() == '"';
  const bool closes = !after_last.empty() && after_last.back() == '"';
  if (!opens && !closes) return {line.substr(0, last), after_last, ""};
  // Quoted: the field starts after the rightmost comma whose rest of the line is one.
  size_t opening = std::string::npos;
  for (size_t c = last; c != std::string::npos && c > 0; c = line.rfind(',', c - 1)) {
    const std::string field = trimmed(line.substr(c + 1));
    if (field.empty() || field.front() != '"') continue;
    if (const auto label = unquoted(field)) return {line.substr(0, c), *label, ""};
    if (opening == std::string::npos) opening = c;
  }
  if (!closes) return {"", "", ": the label " + after_last + " opens a quote that is not closed"};
  if (opening == std::string::npos)
    return {"", "", ": the label " + after_last + " closes a quote that was not opened"};
  return {"", "",
          ": the label " + trimmed(line.substr(opening + 1)) +
              " has a quote inside that is not doubled (in a quoted label, \" is written \"\")"};
}

int64_t class_of_label(const std::string& text, const std::vector<std::string>& labels) {
  if (all_digits(text) && text.size() < 10) {
    const int64_t index = std::stoll(text);
    return index < static_cast<int64_t>(labels.size()) ? index : -1;
  }
  return find_class(text, labels);
}

// One of the report's overall accuracies: "n/a" when no video was evaluated.
std::string percent(const Report& r, double fraction) {
  return r.evaluated > 0 ? format_number("%.2f", 100.0 * fraction) + " %" : "n/a";
}

// A class name, or "#index" for an index the labels file does not have.
std::string name_of(int64_t index, const std::vector<std::string>& labels) {
  return index >= 0 && index < static_cast<int64_t>(labels.size())
             ? labels[static_cast<size_t>(index)]
             : "#" + std::to_string(index);
}

std::string padded(std::string s, size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

}  // namespace

int64_t find_class(const std::string& name, const std::vector<std::string>& labels) {
  const auto exact = std::find(labels.begin(), labels.end(), name);
  if (exact != labels.end()) return exact - labels.begin();
  const std::string want = normalised(name);
  for (size_t i = 0; i < labels.size(); ++i)
    if (normalised(labels[i]) == want) return static_cast<int64_t>(i);
  return -1;
}

std::vector<Sample> samples_from_tree(const std::string& dir,
                                      const std::vector<std::string>& labels,
                                      const std::vector<std::string>& extensions) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw UsageError("eval: " + dir + " is not a directory (expected DIR/<class name>/<video>)");
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory() && entry.path().filename().string()[0] != '.')
      folders.push_back(entry.path());
  if (ec) throw UsageError("eval: cannot read " + dir + ": " + ec.message());
  if (folders.empty())
    throw UsageError("eval: " + dir + " has no class folders (expected DIR/<class name>/<video>)");
  std::sort(folders.begin(), folders.end());
  std::vector<std::string> unknown;
  std::vector<Sample> samples;
  std::istringstream no_stdin;
  for (const auto& folder : folders) {
    const int64_t label = find_class(folder.filename().string(), labels);
    if (label < 0) {
      unknown.push_back(folder.filename().string());
      continue;
    }
    batch::InputSpec spec;
    spec.paths = {folder.string()};
    spec.recursive = true;
    spec.extensions = extensions;
    batch::InputSet found = batch::collect_inputs(spec, no_stdin);
    for (auto& input : found.inputs) samples.push_back({std::move(input), label});
  }
  if (!unknown.empty())
    throw UsageError("eval: " + std::to_string(unknown.size()) + " folder(s) in " + dir +
                     " name no class of the labels file: " + quoted_list(unknown));
  if (samples.empty()) throw UsageError("eval: the class folders of " + dir + " hold no videos");
  std::sort(samples.begin(), samples.end(),
            [](const Sample& a, const Sample& b) { return a.input < b.input; });
  return samples;
}

std::vector<Sample> samples_from_list(std::istream& in, const std::string& source,
                                      const std::vector<std::string>& labels) {
  std::vector<Sample> samples;
  std::vector<std::string> problems;
  // Each video once: record_key() -> its first line and label (batch matches records by it).
  std::unordered_map<std::string, std::pair<size_t, int64_t>> seen;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A byte-order mark (Windows editors), which batch's --list drops too.
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(line_no);
    const auto [input, label, problem] = split_list_line(line);
    if (!problem.empty()) {
      problems.push_back(where + problem);
      continue;
    }
    const int64_t index = class_of_label(label, labels);
    if (index < 0) {
      problems.push_back(where + ": '" + label + "' names no class");
      continue;
    }
    const auto [first, added] = seen.try_emplace(batch::record_key(input), line_no, index);
    if (added) {
      samples.push_back({input, index});
    } else if (first->second.second != index) {
      problems.push_back(where + ": '" + input + "' is on line " +
                         std::to_string(first->second.first) + " with another label");
    } else {
      spdlog::warn("eval: {}: {} repeats line {}; the video counts once", source, where,
                   first->second.first);
    }
  }
  if (!problems.empty())
    throw UsageError("eval: " + source + ": " + std::to_string(problems.size()) +
                     " bad line(s): " + listed(problems, "; ", 5));
  if (samples.empty()) throw UsageError("eval: " + source + " lists no videos");
  return samples;
}

std::vector<Sample> select_shard(const std::vector<Sample>& samples, batch::Shard shard) {
  std::vector<std::string> inputs;
  for (const auto& s : samples) inputs.push_back(s.input);
  std::sort(inputs.begin(), inputs.end());
  inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
  const auto chosen = batch::select_shard(inputs, shard);
  std::vector<Sample> out;
  for (const auto& s : samples)
    if (std::binary_search(chosen.begin(), chosen.end(), s.input)) out.push_back(s);
  return out;
}

std::unordered_map<std::string, Outcome> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("eval: cannot read the records " + path);
  std::unordered_map<std::string, Outcome> out;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (in.eof()) break;  // no line break after it: a torn tail, as batch --resume treats it
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    const auto not_a_record = [&] {
      return UsageError("eval: " + path + " line " + std::to_string(line_no) +
                        " is not a stam batch JSONL record");
    };
    if (!j.is_object() || !j.contains("input") || !j["input"].is_string() ||
        (!j.contains("error") && !j.contains("top_k")))
      throw not_a_record();
    Outcome o;
    if (j.contains("error")) {
      o.error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
    } else {
      if (!j["top_k"].is_array()) throw not_a_record();
      for (const auto& p : j["top_k"]) {
        if (!p.is_object() || !p.contains("index") || !p["index"].is_number_integer())
          throw not_a_record();
        o.ranked.push_back(p["index"].get<int64_t>());
      }
    }
    Outcome& slot = out[batch::stored_record_key(j["input"].get<std::string>())];
    if (slot.ranked.empty()) slot = std::move(o);  // a result wins over an error
  }
  return out;
}

Report evaluate(const std::vector<Sample>& samples,
                const std::unordered_map<std::string, Outcome>& records, int64_t k,
                size_t max_confusions) {
  Report r;
  r.k = k;
  std::map<int64_t, ClassStats> classes;
  std::map<std::pair<int64_t, int64_t>, int64_t> confused;
  for (const auto& s : samples) {
    ++r.total;
    ClassStats& c = classes[s.label];
    c.index = s.label;
    const auto it = records.find(batch::record_key(s.input));
    if (it == records.end()) {
      r.missing.push_back(s.input);
      continue;
    }
    const Outcome& o = it->second;
    if (o.ranked.empty()) {
      ++c.failed;
      r.failed.push_back({s.input, o.error.empty() ? "no predictions" : o.error});
      continue;
    }
    ++r.evaluated;
    ++c.videos;
    const auto end = o.ranked.begin() + std::min<int64_t>(k, o.ranked.size());
    const bool hit1 = o.ranked.front() == s.label;
    const bool hitk = std::find(o.ranked.begin(), end, s.label) != end;
    c.top1 += hit1;
    c.topk += hitk;
    r.top1 += hit1;
    r.topk += hitk;
    if (!hit1) ++confused[{s.label, o.ranked.front()}];
  }
  if (r.evaluated > 0) {
    r.top1_accuracy = static_cast<double>(r.top1) / static_cast<double>(r.evaluated);
    r.topk_accuracy = static_cast<double>(r.topk) / static_cast<double>(r.evaluated);
  }
  double class_sum = 0;
  int64_t class_count = 0;
  for (const auto& [index, c] : classes) {
    r.classes.push_back(c);
    if (c.videos == 0) continue;
    class_sum += static_cast<double>(c.top1) / static_cast<double>(c.videos);
    ++class_count;
  }
  if (class_count > 0) r.mean_class_accuracy = class_sum / static_cast<double>(class_count);
  for (const auto& [pair, count] : confused)
    r.confusions.push_back({pair.first, pair.second, count});
  std::stable_sort(r.confusions.begin(), r.confusions.end(),
                   [](const Confusion& a, const Confusion& b) { return a.count > b.count; });
  if (r.confusions.size() > max_confusions) r.confusions.resize(max_confusions);
  return r;
}

nlohmann::ordered_json report_json(const Report& r, const std::vector<std::string>& labels) {
  using J = nlohmann::ordered_json;
  J classes = J::array(), confusions = J::array(), failed = J::array();
  // Accuracies as fractions, as at the top level (null for a class with no evaluated video),
  // beside the hit counts they come from.
  const auto fraction = [](int64_t hits, int64_t videos) {
    return videos > 0 ? J(static_cast<double>(hits) / static_cast<double>(videos)) : J(nullptr);
  };
  // Likewise the totals: with no video evaluated there is no accuracy, not one of 0.
  const auto overall = [&r](double accuracy) { return r.evaluated > 0 ? J(accuracy) : J(nullptr); };
  for (const auto& c : r.classes)
    classes.push_back({{"index", c.index},
                       {"label", name_of(c.index, labels)},
                       {"videos", c.videos},
                       {"top1", fraction(c.top1, c.videos)},
                       {"topk", fraction(c.topk, c.videos)},
                       {"top1_hits", c.top1},
                       {"topk_hits", c.topk},
                       {"failed", c.failed}});
  for (const auto& c : r.confusions)
    confusions.push_back({{"truth", name_of(c.truth, labels)},
                          {"predicted", name_of(c.predicted, labels)},
                          {"count", c.count}});
  for (const auto& f : r.failed)
    failed.push_back({{"input", path_text(f.input)}, {"error", f.error}});
  return J{{"k", r.k},
           {"total", r.total},
           {"evaluated", r.evaluated},
           {"failed_count", static_cast<int64_t>(r.failed.size())},
           {"missing_count", static_cast<int64_t>(r.missing.size())},
           {"top1", overall(r.top1_accuracy)},
           {"topk", overall(r.topk_accuracy)},
           {"mean_class_accuracy", overall(r.mean_class_accuracy)},
           {"classes", classes},
           {"confusions", confusions},
           {"failed", failed},
           {"missing", r.missing}};
}

std::string report_text(const Report& r, const std::vector<std::string>& labels) {
  const std::string k = std::to_string(r.k);
  std::ostringstream o;
  o << r.evaluated << " of " << r.total << " videos evaluated";
  if (!r.failed.empty()) o << ", " << r.failed.size() << " failed";
  if (!r.missing.empty()) o << ", " << r.missing.size() << " not yet labelled";
  // With k = 1 the top-k figures are the top-1 ones: shown once.
  const bool topk = r.k > 1;
  o << "\ntop-1 " << percent(r, r.top1_accuracy);
  if (topk) o << "  top-" << k << " " << percent(r, r.topk_accuracy);
  o << "  mean class " << percent(r, r.mean_class_accuracy) << "\n\n"
    << "  index  videos   top-1" << (topk ? padded("top-" + k, 8) : "") << "  failed  class\n";
  const auto rate = [](int64_t hits, int64_t n) {
    return n > 0 ? format_number("%.1f", 100.0 * double(hits) / double(n)) : std::string("-");
  };
  for (const auto& c : r.classes)
    o << padded(std::to_string(c.index), 7) << padded(std::to_string(c.videos), 8)
      << padded(rate(c.top1, c.videos), 8) << (topk ? padded(rate(c.topk, c.videos), 8) : "")
      << padded(std::to_string(c.failed), 8) << "  " << name_of(c.index, labels) << "\n";
  if (!r.confusions.empty()) o << "\nmost confused (true -> predicted top-1):\n";
  for (const auto& c : r.confusions)
    o << padded(std::to_string(c.count), 7) << "  " << name_of(c.truth, labels) << " -> "
      << name_of(c.predicted, labels) << "\n";
  if (!r.failed.empty()) o << "\nfailed (not in the accuracy):\n";
  for (const auto& f : r.failed)  // decode errors usually name the file already
    o << "  " << (f.error.find(f.input) == std::string::npos ? f.input + ": " : "") << f.error
      << "\n";
  if (!r.missing.empty()) o << "\nnot yet labelled (resume to finish):\n";
  for (const auto& m : r.missing) o << "  " << m << "\n";
  return o.str();
}

}  // namespace stam::eval
