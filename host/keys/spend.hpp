// Spend: one event per attempt that cost something (the winner's usage, a
// raced or hedged loser's estimate), applied to the key's and team's usage at
// once (budgets see it on the next request) and written to the store in
// batches by KeyService's writer thread: spend logs, the keys' and teams'
// spend, and per-day totals by key, team, model group and deployment.
#pragma once

#include "keys/usage.hpp"
#include "store/database.hpp"

#include <map>
#include <string>
#include <vector>

namespace tailgate::keys {

enum class SpendKind : uint8_t {
    Winner,  // the attempt whose answer the client got: counts against budgets
    Loser,   // a raced or hedged attempt cancelled when another won (estimated)
    Shadow,  // a lost primary kept running to measure it (its own usage)
    Abandoned,  // the client went away before the answer (estimated)
};
const char* spend_kind_name(SpendKind k);

struct SpendEvent {
    std::string request_id;
    int attempt = 0;
    std::string api_key;  // the key's token (SHA-256 hex); the master key's too
    std::string key_alias, team_id, user_id;
    std::string model;         // as requested
    std::string model_group;   // the group that served it
    std::string deployment;    // model_info.id
    std::string upstream_model;
    std::string call_type;     // chat, completions, embeddings, ...
    SpendKind kind = SpendKind::Winner;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    double cost = 0;
    bool estimated = false;  // tokens not reported by the upstream
    std::string status;      // success, cancelled, failed
    TimeMs start = 0, end = 0;
    std::string metadata_json = "{}";
    // Told what was written (Usage::written), so budgets do not count it twice.
    UsagePtr key_usage, team_usage;
};

// The keys' and teams' spend rows as a batch's statements left them.
struct WrittenRows {
    std::map<std::string, SpendRow> keys, teams;  // by token, by team id
};

// One batch in one transaction: budget periods that ended are reset first,
// then the logs (unless `logs` is false: general_settings.disable_spend_logs),
// the keys' and teams' spend and the daily totals. Idempotent logs (request id,
// attempt): a batch retried after a failed commit is not counted twice.
WrittenRows write_batch(store::Connection& c, const std::vector<SpendEvent>& batch, bool logs, TimeMs now);

// Budget periods that ended by `now`: spend back to 0, the next reset set.
void reset_budgets(store::Connection& c, TimeMs now);

}  // namespace tailgate::keys
