#include "model/files.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "stam/error.hpp"

namespace fs = std::filesystem;

namespace stam {

namespace {

// The per-user folder download_models.sh falls back to when the installed one is not writable.
std::string user_models_dir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return (fs::path(xdg) / "stam/models").string();
  if (const char* home = std::getenv("HOME"); home && *home)
    return (fs::path(home) / ".local/share/stam/models").string();
  return "";
}

}  // namespace

std::vector<std::string> default_model_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("STAM_MODELS_DIR"); env && *env) dirs.emplace_back(env);
  dirs.emplace_back("models");  // the working directory's, as README's `models/stam_16.pth` reads
  dirs.push_back(user_models_dir());
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back((exe.parent_path() / "models").string());
    dirs.push_back((exe.parent_path().parent_path() / "share/stam/models").string());
  }
  dirs.emplace_back(STAM_INSTALL_MODELS_DIR);
  dirs.emplace_back(STAM_SOURCE_MODELS_DIR);
  dirs.erase(std::remove(dirs.begin(), dirs.end(), std::string()), dirs.end());
  return dirs;
}

std::string find_model_file(const std::string& name) {
  for (const auto& dir : default_model_dirs()) {
    std::error_code ec;
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

namespace {

std::string looked_in() {
  std::string looked = "; looked in ($STAM_MODELS_DIR first, when set):";
  for (const auto& dir : default_model_dirs()) looked += "\n  " + dir;
  return looked;
}

// The download script where it is: beside the installed labels, or in the source tree.
std::string download_script() {
  for (const auto& dir : default_model_dirs()) {
    std::error_code ec;
    for (const fs::path& p :
         {fs::path(dir) / "download_models.sh", fs::path(dir) / "../scripts/download_models.sh"})
      if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  return "scripts/download_models.sh";
}

}  // namespace

std::string resolve_weights(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::string p = find_model_file("stam_16.pth");
  if (p.empty())
    throw ModelError("no weights given and stam_16.pth not found" + looked_in() +
                     "\nDownload it with `" + download_script() + " 16`, or pass --weights PATH");
  return p;
}

std::string resolve_labels(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::string p = find_model_file("kinetics400_labels.txt");
  if (p.empty())
    throw ModelError("no labels given and kinetics400_labels.txt not found" + looked_in() +
                     "\nPass --labels FILE (one class name a line)");
  return p;
}

}  // namespace stam
