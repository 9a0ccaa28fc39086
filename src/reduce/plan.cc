#include "reduce/plan.h"

namespace ficoco {

const char* CompressRuleName(CompressRule rule) {
  switch (rule) {
    case CompressRule::Prune: return "prune";
    case CompressRule::SelfPreserving: return "self-preserving";
    case CompressRule::Additive: return "additive";
    case CompressRule::Average: return "average";
    case CompressRule::SizeWeighted: return "size-weighted";
    case CompressRule::FuseIntoNew: return "fuse-into-new-token";
  }
  return "?";
}

}  // namespace ficoco
