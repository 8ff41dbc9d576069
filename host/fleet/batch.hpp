// The wire form of what one replica tells the others every sync interval:
// one JSON object per batch (one Redis stream entry), deployments by
// identity, outcomes as compact arrays. Raw outcomes are the mergeable
// "sketch": every replica adds the others' samples to its own windows, so a
// quantile is computed over the fleet's window exactly, not approximated
// from merged summaries.
#pragma once

#include "fleet/link.hpp"

#include <optional>
#include <string>
#include <vector>

namespace tailgate::fleet {

struct Batch {
    std::string replica;
    int64_t sent_wall_ms = 0;
    std::vector<RemoteOutcome> outcomes;
    std::vector<Message> messages;
};

// Encodes the events and messages of `out` (the rest of an Outbox travels
// as keys). Outcome times are sent as ages relative to `now_wall_ms`.
std::string encode_batch(const std::string& replica, const Outbox& out, int64_t now_wall_ms);

// nullopt when `json` is not a batch of this format (a newer or broken writer).
std::optional<Batch> decode_batch(std::string_view json);

}  // namespace tailgate::fleet
