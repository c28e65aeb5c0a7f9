// What a batch run has left to do: the inputs of its shard that its output does not hold yet.
#include "batch/plan.hpp"

#include "stam/error.hpp"

namespace stam::batch {

Plan plan_work(const std::vector<std::string>& shard, const ExistingOutput& existing,
               const std::map<std::string, std::string>& unreadable, bool retry_errors,
               const std::function<void(const std::string&)>& check_input) {
  Plan plan;
  for (const auto& input : shard) {
    auto it = existing.done.find(record_key(input));
    if (it == existing.done.end() || (retry_errors && !it->second)) {
      if (const auto dir = unreadable.find(input); dir != unreadable.end()) {
        plan.refused.emplace_back(input, input + ": " + dir->second);
        continue;
      }
      try {
        check_input(input);
        plan.pending.push_back(input);
      } catch (const InputError& e) {
        plan.refused.emplace_back(input, e.what());
      }
      continue;
    }
    ++plan.skipped;
    if (!it->second) ++plan.old_errors;
  }
  return plan;
}

}  // namespace stam::batch
