#include "plugin/route_guard.hpp"

#include <algorithm>

namespace tailgate::plugin {

namespace {

std::string at(const char* what, uint32_t k) { return std::string(what) + "[" + std::to_string(k) + "]"; }

}  // namespace

void RouteGuard::save(const tg_route& route) {
    route_ = route;
    count_ = route.count;
    if (count_ <= kInline) std::copy(route.candidates, route.candidates + count_, inline_.begin());
    else heap_.assign(route.candidates, route.candidates + count_);
    // The whole buffer, not attempt_count entries: a plugin may write slots
    // beyond the count it leaves, and a later strategy must see them unchanged.
    std::copy(route.attempts, route.attempts + TG_MAX_ATTEMPTS, attempts_.begin());
}

std::string RouteGuard::violation(const tg_route& route) const {
    if (route.candidates != route_.candidates)
        return route.candidates == nullptr ? "set candidates to NULL"
                                           : "replaced the candidates array (reorder it in place)";
    if (route.attempts != route_.attempts) return "replaced the attempts array";
    if (route.host_private != route_.host_private) return "changed host_private";
    if (route.struct_size != route_.struct_size) return "changed struct_size";
    if (route.count > route_.count)
        return "raised count from " + std::to_string(route_.count) + " to " + std::to_string(route.count);
    // Each entry left must be one handed in, each at most once. Groups are
    // small (a few deployments), so a quadratic match beats building a set.
    const tg_candidate* in = saved();
    std::array<uint8_t, kInline> used_small{};
    uint8_t* used = used_small.data();
    if (count_ > kInline) {
        used_big_.assign(count_, 0);
        used = used_big_.data();
    }
    for (uint32_t k = 0; k < route.count; ++k) {
        const tg_candidate& c = route.candidates[k];
        if (c.deployment == nullptr) return at("candidates", k) + ".deployment is NULL";
        size_t j = 0;
        while (j < count_ && in[j].deployment != c.deployment) ++j;
        if (j == count_)
            return at("candidates", k) + " is not one of the deployments handed in (another group's, or a copy)";
        if (used[j]) return at("candidates", k) + " repeats a deployment already listed";
        if (c.stats != in[j].stats) return at("candidates", k) + ".stats was replaced";
        used[j] = 1;
    }
    if (route.attempt_count > TG_MAX_ATTEMPTS)
        return "attempt_count " + std::to_string(route.attempt_count) + " exceeds TG_MAX_ATTEMPTS (" +
               std::to_string(TG_MAX_ATTEMPTS) + ")";
    for (uint32_t i = 0; i < route.attempt_count; ++i) {
        const tg_attempt& a = route.attempts[i];
        if (a.candidate >= route.count)
            return at("attempts", i) + " names candidate " + std::to_string(a.candidate) + " but count is " +
                   std::to_string(route.count);
        if (a.launch > TG_LAUNCH_ON_FAILURE)
            return at("attempts", i) + " has unknown launch rule " + std::to_string(a.launch);
    }
    return {};
}

void RouteGuard::restore(tg_route& route) const {
    void* ctx = TG_HAS_MEMBER(&route_, tg_route, request_ctx) ? route.request_ctx : nullptr;
    char* error = route.error;
    const uint32_t error_size = route.error_size;
    route = route_;
    std::copy(saved(), saved() + count_, route.candidates);
    std::copy(attempts_.begin(), attempts_.end(), route.attempts);
    route.request_ctx = ctx;
    route.error = error;
    route.error_size = error_size;
}

bool RouteGuard::plan_changed(const tg_route& route) const {
    if (route.attempt_count != route_.attempt_count) return true;
    const uint32_t n = std::min<uint32_t>(route.attempt_count, TG_MAX_ATTEMPTS);
    for (uint32_t i = 0; i < n; ++i) {
        const tg_attempt& a = route.attempts[i];
        const tg_attempt& b = attempts_[i];
        if (a.candidate != b.candidate || a.launch != b.launch || a.delay_ms != b.delay_ms) return true;
    }
    return false;
}

}  // namespace tailgate::plugin
