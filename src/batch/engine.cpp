// The engine of a batch run in production: the Classifier, in the precision a resumed output's
// records were made in when `auto` is asked for.
#include <spdlog/spdlog.h>

#include <optional>

#include "batch/batch.hpp"
#include "device.hpp"
#include "model/precision.hpp"
#include "stam/error.hpp"

namespace stam::batch {

namespace {

// Hands out its ClipReader as soon as the Classifier has one, before the weights load.
class ClassifierEngine : public Engine {
 public:
  ClassifierEngine(const ModelOptions& o, const std::function<void(const Preparer&)>& ready)
      : classifier_(o, [this, &ready](const ClipReader& reader) {
          reader_.emplace(reader);
          if (ready) ready(preparer());
        }) {}
  Preparer preparer() const override {
    return [reader = *reader_](const std::string& input) { return reader.read(input); };
  }
  std::vector<Result> infer(const std::vector<Clip>& clips) override {
    return classifier_.infer(clips);
  }
  Precision precision() const override { return classifier_.precision(); }

 private:
  std::optional<ClipReader> reader_;  // declared first: the Classifier sets it while it loads
  Classifier classifier_;
};

}  // namespace

EngineFactory classifier_engine(const ModelOptions& options) {
  return [options](const EngineRequest& request) {
    ModelOptions o = options;
    if (o.precision == Precision::kAuto && request.resumed_precision) {
      o.precision = *request.resumed_precision;
      try {
        check_precision(resolve_device(o.device), o.precision);
      } catch (const DeviceError& e) {
        throw DeviceError("the output's records were made in " + to_string(o.precision) +
                          " (its settings file's precision_used), which cannot run here: " +
                          e.what() + "; resume it where it can, or write to another --output");
      }
      spdlog::info(
          "precision {}, as the output's records were made (auto chooses for a new output)",
          to_string(o.precision));
    }
    return std::make_unique<ClassifierEngine>(o, request.preparer_ready);
  };
}

}  // namespace stam::batch
