// The settings that shape a batch output's records (OUT.meta.json): what they are for a model,
// with fingerprints of its files, and how they are compared, read and written.
#include <spdlog/fmt/fmt.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "batch/batch.hpp"
#include "batch/files.hpp"
#include "checkpoint/checkpoint.hpp"
#include "checkpoint/zip_directory.hpp"
#include "model/files.hpp"
#include "model/load.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

// FNV-1a, 64 bits: a fingerprint to tell files apart, not a defence against forgery.
class Fnv64 {
 public:
  void add(std::string_view bytes) {
    for (char c : bytes) h_ = (h_ ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  std::string hex() const { return fmt::format("{:016x}", h_); }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

std::string read_bytes(std::ifstream& in, uint64_t offset, uint64_t n) {
  std::string bytes(n, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  return bytes;
}

// The weights' content, cheaply. A zip checkpoint (torch.save) lists each record's CRC-32 in its
// central directory: those of all records, by name, stand for every byte at no cost. A legacy
// file has no such list: 16 evenly spaced 64 KiB pieces of it (the whole file under 1 MiB),
// which any retraining changes.
std::string weights_fingerprint(const Checkpoint& checkpoint, uint64_t size) {
  const std::string& path = checkpoint.path();
  Fnv64 h;
  if (checkpoint.format() == "zip") {
    const auto records = zip::read_directory(path, size);
    std::map<std::string, uint32_t> crcs;
    for (const auto& [name, record] : records) crcs[name] = record.crc32;
    for (const auto& [name, crc] : crcs) h.add(fmt::format("{}\n{:08x}\n", name, crc));
    return "zip-crc32-fnv1a64:" + h.hex();
  }
  std::ifstream in(path, std::ios::binary);
  constexpr uint64_t kPiece = 64 << 10, kPieces = 16;
  if (size <= kPiece * kPieces) {
    h.add(read_bytes(in, 0, size));
  } else {
    for (uint64_t k = 0; k < kPieces; ++k)
      h.add(read_bytes(in, (size - kPiece) * k / (kPieces - 1), kPiece));  // the last ends the file
  }
  if (!in) throw ModelError("cannot read " + path);
  return "sampled-fnv1a64:" + h.hex();
}

// The labels file is small: all of its bytes.
std::string labels_fingerprint(const std::string& path, uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  Fnv64 h;
  h.add(read_bytes(in, 0, size));
  if (!in) throw ModelError("cannot read " + path);
  return "fnv1a64:" + h.hex();
}

}  // namespace

Settings model_settings(const ModelOptions& model, bool logits) {
  const auto file = [](const std::string& path) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) throw ModelError("cannot read " + path + ": " + ec.message());
    return std::make_pair(std::filesystem::path(path).filename().string(), bytes);
  };
  const std::string weights_path = resolve_weights(model.weights);
  const std::string labels_path = resolve_labels(model.labels);
  const auto [weights, weights_bytes] = file(weights_path);
  const auto [labels, labels_bytes] = file(labels_path);
  const ModelSource source = open_model(model);  // the checkpoint's index: no tensor is read
  const Checkpoint& checkpoint = *source.checkpoint;
  const int64_t frames = source.config.frames;
  Settings s = Settings::object();
  s["weights"] = weights;
  s["weights_bytes"] = weights_bytes;
  s["weights_fingerprint"] = weights_fingerprint(checkpoint, weights_bytes);
  s["labels"] = labels;
  s["labels_bytes"] = labels_bytes;
  s["labels_fingerprint"] = labels_fingerprint(labels_path, labels_bytes);
  s["frames"] = frames;
  s["sampling"] = to_string(model.sampling);
  s["seek"] = to_string(model.seek);
  s["precision"] = to_string(model.precision);
  s["top_k"] = model.top_k;
  s["logits"] = logits;
  return s;
}

std::string settings_path(const std::string& output) {
  return output + ".meta.json";
}

std::vector<std::string> settings_differences(const Settings& recorded_as_read,
                                              const Settings& now_as_given) {
  // Settings recorded only by later versions, with the value every earlier run had.
  static const Settings later = {{"seek", "exact"}};
  // Settings recorded only by later versions, without such a value: an output recorded without
  // them cannot be checked on them (its settings file gets them added).
  static const std::set<std::string> unknown_before = {"weights_fingerprint", "labels_fingerprint"};
  Settings recorded = recorded_as_read, now = now_as_given;
  for (Settings* s : {&recorded, &now})
    for (const auto& [key, value] : later.items())
      if (!s->contains(key)) (*s)[key] = value;
  const auto text = [](const Settings& s, const std::string& key) {
    if (!s.contains(key)) return std::string("(not recorded)");
    const Settings& v = s[key];
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  // `auto` stands for what it chose, the precision_used recorded: a resumed `auto` run takes it
  // too, so `auto` that chose bf16 and an explicit bf16 make the same records.
  const auto same = [&](const std::string& key) {
    if (!recorded.contains(key) && unknown_before.count(key) > 0) return true;
    if (!recorded.contains(key) || !now.contains(key)) return false;
    if (recorded[key] == now[key]) return true;
    if (key != "precision" || !recorded.contains(kPrecisionUsed)) return false;
    const auto resolved = [&](const Settings& p) {
      return p == "auto" ? recorded[kPrecisionUsed] : p;
    };
    return resolved(recorded[key]) == resolved(now[key]);
  };
  std::vector<std::string> diffs;
  Settings keys = Settings::object();  // recorded keys first, then new ones, each once
  for (const auto& [k, v] : recorded.items()) keys[k] = true;
  for (const auto& [k, v] : now.items()) keys[k] = true;
  for (const auto& [key, unused] : keys.items())
    if (key != kPrecisionUsed && !same(key))
      diffs.push_back(key + ": " + text(recorded, key) + " in the output, " + text(now, key) +
                      " now");
  return diffs;
}

Settings read_settings(const std::string& path) {
  Settings s = Settings::parse(read_all(path), nullptr, false);
  if (!s.is_object())
    throw Error(Exit::kUsage, path + " is not a stam batch settings file (a JSON object)");
  return s;
}

void write_settings(const std::string& path, const Settings& settings) {
  Replacement file(path);
  file.write(settings.dump(2) + "\n");
  file.commit();
}

}  // namespace stam::batch
