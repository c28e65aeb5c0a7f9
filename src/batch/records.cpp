// Rendering batch records (JSONL lines, CSV rows) and reading CSV back.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "batch/batch.hpp"
#include "output.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

// Invalid UTF-8 in other text than a path (an error message quoting one) becomes U+FFFD instead
// of an exception, so one odd name cannot stop a run.
std::string dump_line(const nlohmann::ordered_json& j) {
  return dump_json(j) + "\n";
}

std::string score_text(double score) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", score);
  return buf;
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) line += ',';
    line += csv_field(fields[i]);
  }
  return line + "\n";
}

// The parser's cursor over one buffer; reads one field at a time.
struct CsvCursor {
  std::string_view data;
  size_t pos = 0;

  bool at_end() const { return pos >= data.size(); }
  bool at_row_break() const {
    return data[pos] == '\n' ||
           (data[pos] == '\r' && pos + 1 < data.size() && data[pos + 1] == '\n');
  }
  void skip_row_break() { pos += data[pos] == '\r' ? 2 : 1; }

  // Quoted field: returns false at EOF inside quotes (a torn tail). Throws on a stray quote.
  bool quoted(std::string& field) {
    ++pos;
    while (pos < data.size()) {
      char c = data[pos++];
      if (c != '"') {
        field += c;
      } else if (pos < data.size() && data[pos] == '"') {
        field += '"';
        ++pos;
      } else {
        if (pos < data.size() && data[pos] != ',' && !at_row_break())
          throw UsageError("malformed CSV: text after a closing quote at byte " +
                           std::to_string(pos));
        return true;
      }
    }
    return false;
  }

  void unquoted(std::string& field) {
    while (pos < data.size() && data[pos] != ',' && !at_row_break()) {
      if (data[pos] == '"')
        throw UsageError("malformed CSV: quote inside an unquoted field at byte " +
                         std::to_string(pos));
      field += data[pos++];
    }
  }

  // One row; false when the data ends before its line break.
  bool row(std::vector<std::string>& fields) {
    for (;;) {
      std::string field;
      if (!at_end() && data[pos] == '"') {
        if (!quoted(field)) return false;
      } else {
        unquoted(field);
      }
      fields.push_back(std::move(field));
      if (at_end()) return false;
      if (data[pos] == ',') {
        ++pos;
        continue;
      }
      skip_row_break();
      return true;
    }
  }
};

}  // namespace

Format parse_format(const std::string& name, const std::string& output_path) {
  if (name == "jsonl") return Format::kJsonl;
  if (name == "csv") return Format::kCsv;
  if (!name.empty()) throw UsageError("--format must be jsonl or csv, not '" + name + "'");
  return has_extension(output_path, {"csv"}) ? Format::kCsv : Format::kJsonl;
}

std::string normal_path(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  // A folder named with a trailing slash is the same folder ("/" has nothing to drop).
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return p.string();
}

std::string record_key(const std::string& path) {
  return path_text(normal_path(path));
}

std::string stored_record_key(const std::string& input) {
  return valid_utf8_text(normal_path(input));
}

RecordWriter::RecordWriter(Format format, int64_t top_k, bool with_logits, bool warnings_column)
    : format_(format),
      top_k_(top_k),
      with_logits_(with_logits),
      warnings_column_(warnings_column) {}

std::string RecordWriter::header() const {
  return format_ == Format::kCsv ? csv_header(top_k_, warnings_column_) : "";
}

std::string RecordWriter::result(const Result& r) const {
  if (format_ == Format::kJsonl) return dump_line(to_json(r, with_logits_));
  std::vector<std::string> fields{path_text(r.input)};
  for (int64_t i = 0; i < top_k_; ++i) {
    const bool have = i < static_cast<int64_t>(r.top_k.size());
    fields.push_back(have ? r.top_k[i].label : "");
    fields.push_back(have ? score_text(r.top_k[i].score) : "");
  }
  if (warnings_column_) {
    std::string joined;
    for (const auto& w : r.warnings) joined += (joined.empty() ? "" : "; ") + w;
    fields.push_back(path_text(joined));
  }
  fields.emplace_back();  // no error
  return csv_line(fields);
}

std::string RecordWriter::error(const std::string& input, const std::string& message) const {
  if (format_ == Format::kJsonl) return dump_line(error_json(input, message));
  std::vector<std::string> fields(static_cast<size_t>(2 * top_k_ + 2 + (warnings_column_ ? 1 : 0)));
  fields.front() = path_text(input);
  fields.back() = message.empty() ? "error" : path_text(message);  // empty would mean success
  return csv_line(fields);
}

std::string csv_header(int64_t top_k, bool warnings_column) {
  std::string h = "input";
  for (int64_t i = 1; i <= top_k; ++i)
    h += ",label_" + std::to_string(i) + ",score_" + std::to_string(i);
  return h + (warnings_column ? ",warnings" : "") + ",error\n";
}

CsvRows parse_csv(std::string_view data) {
  CsvRows out;
  CsvCursor cur{data};
  while (!cur.at_end()) {
    std::vector<std::string> fields;
    if (!cur.row(fields)) break;  // unterminated: the torn tail starts at complete_bytes
    out.rows.push_back(std::move(fields));
    out.row_end.push_back(cur.pos);
    out.complete_bytes = cur.pos;
  }
  return out;
}

}  // namespace stam::batch
