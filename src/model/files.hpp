#pragma once
// Where a run finds its weights and labels when no path is given (the whisper.cpp way: a models/
// folder that scripts/download_models.sh fills). Kept off the precompiled header: only this
// file's object carries the install and source paths.
#include <string>
#include <vector>

namespace stam {

// Where the model files are looked for by default: $STAM_MODELS_DIR, models/ in the working
// directory, the user's ${XDG_DATA_HOME:-~/.local/share}/stam/models, models/ beside the binary,
// <prefix>/share/stam/models, the source tree's models/.
std::vector<std::string> default_model_dirs();
// First existing `name` in default_model_dirs(), else "" .
std::string find_model_file(const std::string& name);
// The weights / labels file a run uses: the flag when given, else the default file found in
// default_model_dirs(). Throws ModelError saying where it looked and how to get the file.
std::string resolve_weights(const std::string& flag);
std::string resolve_labels(const std::string& flag);

}  // namespace stam
