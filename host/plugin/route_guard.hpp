// The host's side of "never trust a plugin's output": a snapshot of a tg_route
// taken before a strategy's route() runs, a check of what the strategy left
// against it, and the undo when the strategy failed or broke a rule.
//
//   RouteGuard guard;               // one per routing pass, reused per strategy
//   guard.save(route);
//   int32_t rc = call_plugin(route);
//   if (rc == TG_OK) { if (auto why = guard.violation(route); !why.empty()) ... }
//   if (failed) guard.restore(route);
//
// The rules are those documented on tg_route in <tailgate/plugin_abi.h>.
#pragma once

#include <tailgate/plugin_abi.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tailgate::plugin {

class RouteGuard {
public:
    // Remembers the route as the strategy is about to receive it. Never throws
    // once the buffers have grown to the route's size (they are reused).
    void save(const tg_route& route);

    // Why `route` breaks the contract compared with what save() saw, or "" when
    // it does not. Reads only host memory (the saved pointers): a pointer the
    // plugin wrote is compared, never dereferenced.
    std::string violation(const tg_route& route) const;

    // Puts back everything save() saw: array pointers, candidates, count, every
    // attempt slot and attempt_count. request_ctx is left alone (it belongs to
    // the plugin even when it fails, so it can still be released).
    void restore(tg_route& route) const;

    // Whether the plan (attempt_count and the attempts it counts) differs from
    // the one save() saw: the strategy shaped the plan.
    bool plan_changed(const tg_route& route) const;

private:
    // Groups are small: their candidates fit inline, so a routing pass
    // allocates nothing here; larger ones spill to the heap.
    static constexpr size_t kInline = 16;
    const tg_candidate* saved() const { return count_ <= kInline ? inline_.data() : heap_.data(); }

    tg_route route_{};
    size_t count_ = 0;
    std::array<tg_candidate, kInline> inline_{};
    std::vector<tg_candidate> heap_;
    std::array<tg_attempt, TG_MAX_ATTEMPTS> attempts_{};
    mutable std::vector<uint8_t> used_big_;  // violation()'s scratch beyond kInline candidates
};

}  // namespace tailgate::plugin
