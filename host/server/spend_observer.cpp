#include "server/spend_observer.hpp"

#include "plugin/prices.hpp"

namespace tailgate::server {

Pricing::Pricing(const config::Config& cfg) {
    prices_.reserve(cfg.deployments.size());
    for (const auto& d : cfg.deployments) {
        double in = d.input_cost_per_token, out = d.output_cost_per_token;
        if (in < 0 || out < 0) {
            if (auto p = plugin::list_price(d.upstream.model)) {
                if (in < 0) in = p->input;
                if (out < 0) out = p->output;
            }
        }
        prices_.emplace_back(in, out);
    }
}

double Pricing::cost(uint32_t d, int64_t prompt, int64_t completion) const {
    const double in = input(d), out = output(d);
    return (prompt > 0 && in > 0 ? static_cast<double>(prompt) * in : 0.0) +
           (completion > 0 && out > 0 ? static_cast<double>(completion) * out : 0.0);
}

SpendObserver::SpendObserver(SpendContext ctx, std::shared_ptr<const config::Config> cfg, const Pricing& pricing,
                             const dispatch::Plan& plan, std::shared_ptr<dispatch::Observer> inner)
    : ctx_(std::move(ctx)), cfg_(std::move(cfg)), pricing_(pricing), inner_(std::move(inner)) {
    deployments_.reserve(plan.attempts.size());
    for (const auto& a : plan.attempts) deployments_.push_back(a.deployment);
    attempts_.resize(plan.attempts.size());
}

void SpendObserver::on_attempt(const dispatch::AttemptEvent& ev) {
    if (inner_) inner_->on_attempt(ev);
    if (ev.attempt >= attempts_.size()) return;
    Attempt& a = attempts_[ev.attempt];
    switch (ev.type) {
        case EventType::Started:
            a.launched = true;
            a.started = keys::now_ms();
            break;
        case EventType::Success:
            winner_prompt_ = ev.prompt_tokens;
            record(ev.attempt, keys::SpendKind::Winner, ev.prompt_tokens, ev.completion_tokens,
                   ev.prompt_tokens < 0 && ev.completion_tokens < 0, "success");
            if (ctx_.caller) {
                const int64_t tokens = std::max<int64_t>(0, ev.prompt_tokens) + std::max<int64_t>(0, ev.completion_tokens);
                keys::KeyService::count_tokens(*ctx_.caller, tokens, keys::now_ms());
            }
            break;
        case EventType::ShadowDone:
            record(ev.attempt, keys::SpendKind::Shadow, ev.prompt_tokens, ev.completion_tokens, false, "shadow");
            break;
        case EventType::Cancelled:
            a.cancelled = true;
            a.why = ev.cancel_reason;
            a.prompt = ev.prompt_tokens;
            a.completion = ev.completion_tokens;
            break;
        case EventType::Failure: a.done = true; break;  // providers do not bill an error
        default: break;
    }
}

SpendObserver::~SpendObserver() {
    try {
        for (uint32_t i = 0; i < attempts_.size(); ++i) {
            const Attempt& a = attempts_[i];
            if (!a.launched || a.done || !a.cancelled) continue;
            // The prompt was sent: the winner's count of it, else the estimate.
            const int64_t prompt = a.prompt >= 0 ? a.prompt : winner_prompt_ >= 0 ? winner_prompt_ : ctx_.prompt_estimate;
            record(i, a.why == CancelReason::ClientGone ? keys::SpendKind::Abandoned : keys::SpendKind::Loser, prompt,
                   std::max<int64_t>(0, a.completion), true, "cancelled");
        }
    } catch (...) {
        // A destructor: losing an estimate is better than losing the process.
    }
}

void SpendObserver::record(uint32_t i, keys::SpendKind kind, int64_t prompt, int64_t completion, bool estimated,
                           const char* status) {
    Attempt& a = attempts_[i];
    if (a.done || !ctx_.keys) return;
    a.done = true;
    const uint32_t d = deployments_[i];
    const auto& dep = cfg_->deployments[d];
    keys::SpendEvent e;
    e.request_id = ctx_.request_id;
    e.attempt = static_cast<int>(i);
    if (ctx_.caller) {
        if (ctx_.caller->key) {
            e.api_key = ctx_.caller->key->token;
            e.key_alias = ctx_.caller->key->key_alias;
            e.team_id = ctx_.caller->key->team_id;
            e.user_id = ctx_.caller->key->user_id;
            e.key_usage = ctx_.caller->key_usage;
            e.team_usage = ctx_.caller->team_usage;
        } else {
            e.api_key = ctx_.keys->master_token();
        }
    }
    if (e.user_id.empty()) e.user_id = ctx_.user;
    e.model = ctx_.model;
    e.model_group = dep.model_name;
    e.deployment = dep.id;
    e.upstream_model = dep.upstream.model;
    e.call_type = ctx_.call_type;
    e.kind = kind;
    e.prompt_tokens = std::max<int64_t>(0, prompt);
    e.completion_tokens = std::max<int64_t>(0, completion);
    e.cost = pricing_.cost(d, e.prompt_tokens, e.completion_tokens);
    e.estimated = estimated;
    e.status = status;
    e.start = a.started ? a.started : keys::now_ms();
    e.end = keys::now_ms();
    e.metadata_json = ctx_.metadata_json;
    ctx_.keys->record(std::move(e));
}

}  // namespace tailgate::server
