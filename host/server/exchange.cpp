#include "server/exchange.hpp"
#include "server/request_body.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

namespace tailgate::server {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

const char* attempt_state_name(dispatch::AttemptState s) {
    switch (s) {
        case dispatch::AttemptState::Running: return "running";
        case dispatch::AttemptState::Won: return "won";
        case dispatch::AttemptState::Failed: return "failed";
        case dispatch::AttemptState::Cancelled: return "cancelled";
        case dispatch::AttemptState::Refused: return "refused";
        case dispatch::AttemptState::Shadow: return "shadow";  // lost, kept running to measure it
        default: return "not_launched";
    }
}

}  // namespace

void RequestScope::record() {
    if (recorded) return;
    recorded = true;
    if (!g.prom && !g.json_log) return;
    try {
        sample.http_status = status ? status : req ? req->status() : 0;
        sample.total_s = seconds(Clock::now() - t0);
        if (g.prom) g.prom->request_finished(sample, stream_counted);
        if (g.strat && strat) {
            strat->total_ms = sample.total_s * 1000.0;
            strat->ttft_ms = sample.ttft_s >= 0 ? sample.ttft_s * 1000.0 : -1;
            g.strat->record(*strat, Clock::now());
        }
        if (g.json_log) {
            logfmt::Fields f;
            f.str("msg", "request").str("request_id", request_id);
            if (!client_request_id.empty()) f.str("client_request_id", client_request_id);
            f.str("path", path);
            if (!model.empty()) f.str("model_group", model);
            f.integer("status", sample.http_status);
            if (!error.empty()) f.str("error", error);
            f.num("total_ms", sample.total_s * 1000.0);
            std::string line = logfmt::structured(f);
            if (!detail.empty()) line += "," + detail.members();
            spdlog::info("{}", line);
        }
    } catch (...) {
        // Bookkeeping runs in destructors and after the response: a failure to
        // record (allocation, a log sink) must not take the connection down.
    }

}

void RelayedExchange::adopt(const frontend::Request& req, Clock::time_point start, std::unique_ptr<RequestScope> request_scope,
                            std::unique_ptr<Drain::Request> drain_entry, Admission::Ticket admission_ticket) {
    uri = req.uri();
    version = req.version();
    keep_alive_ = req.keep_alive();
    headers += req.header_lines();
    t0 = start;
    scope = std::move(request_scope);
    scope->req = nullptr;
    active = std::move(drain_entry);
    ticket = std::move(admission_ticket);
}

void RelayedExchange::error_response(std::string& out, const ApiError& e, uint32_t attempts, bool final) {
    header("x-tailgate-attempts", std::to_string(attempts));
    // Tell the OpenAI SDK not to add its own retries on top of the ones we made.
    if (attempts > 1 || final) header("x-should-retry", "false");
    if (e.retry_after_s >= 0) header("Retry-After", std::to_string(g.client_retry_after(e.retry_after_s)));
    const surfaces::Surface& surface = surfaces::surface_for(api);
    const std::string body = surface.error_body(e);
    status = surface.error_status(e);
    head(out, status, "application/json", static_cast<int64_t>(body.size()));
    out += body;
    outcome = e.message;
}

void RelayedExchange::head(std::string& out, int code, std::string_view content_type, int64_t length) {
    out.reserve(out.size() + 512 + (length > 0 ? static_cast<size_t>(length) : 0));
    out += version;
    out += ' ';
    out += std::to_string(code);
    out += ' ';
    out += frontend::reason_phrase(code);
    out += "\r\n";
    header("Content-Type", content_type);
    if (length >= 0) header("Content-Length", std::to_string(length));
    else if (chunked) header("Transfer-Encoding", "chunked");
    header("Connection", keep_alive_ ? "Keep-Alive" : "Close");
    out += headers;
    out += "\r\n";
}

void RelayedExchange::chunk(std::string& out, std::string_view bytes, bool chunked) {
    if (bytes.empty()) return;
    if (!chunked) {
        out += bytes;
        return;
    }
    char size[24];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    out.append(size, static_cast<size_t>(n));
    out += bytes;
    out += "\r\n";
}

// LiteLLM's response headers that its users' tooling reads. Never an api_base or a key.
void ApiExchange::litellm_headers(std::optional<uint32_t> winner) {
    const dispatch::Plan& plan = routed.plan;
    const auto records = executor->records();
    uint32_t in_group = 0;  // launched attempts of the requested group (a model-list race has no fallbacks)
    std::vector<uint32_t> fallbacks;
    for (size_t i = 0; i < records.size(); ++i) {
        const auto st = records[i].state;
        if (st == dispatch::AttemptState::NotLaunched || st == dispatch::AttemptState::Refused) continue;
        const uint32_t grp = plan.attempts[i].group;
        if (grp == 0 || !info.race_groups.empty()) ++in_group;
        else if (std::find(fallbacks.begin(), fallbacks.end(), grp) == fallbacks.end()) fallbacks.push_back(grp);
    }
    header("x-litellm-call-id", scope->request_id);
    header("x-litellm-attempted-retries", std::to_string(in_group > 0 ? in_group - 1 : 0));
    header("x-litellm-attempted-fallbacks", std::to_string(fallbacks.size()));
    if (!winner || plan.stream) return;  // a stream's usage comes after the headers
    const auto& r = records[*winner];
    const auto& d = g.cfg->deployments[plan.attempts[*winner].deployment];
    if (r.prompt_tokens < 0 || r.completion_tokens < 0 || d.input_cost_per_token < 0 || d.output_cost_per_token < 0)
        return;
    const double cost = static_cast<double>(r.prompt_tokens) * d.input_cost_per_token +
                        static_cast<double>(r.completion_tokens) * d.output_cost_per_token;
    header("x-litellm-response-cost", fmt::format("{}", cost));
}

bool ApiExchange::render(ClientChannel::Batch& batch, std::string& out) {
    const dispatch::Plan& plan = routed.plan;
    if (!batch.committed) {
        // Failed before anything was committed: an ordinary error response.
        litellm_headers(std::nullopt);
        error_response(out, batch.error ? *batch.error : ApiError::internal("request ended without a response"),
                       executor->launched(), routed.panic);
        return true;
    }
    if (batch.attempt) {
        const auto& d = g.cfg->deployments[plan.attempts[*batch.attempt].deployment];
        deployment_id = d.id;
        header("x-tailgate-deployment", d.id);
        header("x-litellm-model-id", d.id);  // what LiteLLM clients already read
        header("x-tailgate-model-group", d.model_name);
        header("x-litellm-model-group", d.model_name);
        header("x-tailgate-attempts", std::to_string(executor->launched()));
        litellm_headers(*batch.attempt);
        const uint32_t group = plan.attempts[*batch.attempt].group;
        if (group > 0 && info.race_groups.empty()) header("x-tailgate-fallback", routed.groups[group]);
        status = batch.head.status;
        ttft_ms = ms_since(t0);
        if (!plan.stream) {
            if (tap) tap->on_bytes(batch.bytes);
            const std::string_view ct = batch.head.header("content-type");
            head(out, status, ct.empty() ? std::string_view("application/json") : ct,
                 static_cast<int64_t>(batch.bytes.size()));
            out += batch.bytes;
            first_written = Clock::now();
            outcome = "ok";
            return true;
        }
        // HTTP/1.0 has no chunked encoding: the stream ends with the connection.
        if (version == "HTTP/1.0") keep_alive_ = false;
        else chunked = true;
        header("Cache-Control", "no-cache");
        if (raw_stream) {
            const std::string_view ct = batch.head.header("content-type");
            head(out, 200, ct.empty() ? std::string_view("application/octet-stream") : ct, -1);
        } else {
            head(out, 200, "text/event-stream", -1);
        }
    }
    chunk(out, batch.bytes, chunked);
    if (tap && !batch.bytes.empty()) tap->on_bytes(batch.bytes);
    if (batch.finished && batch.error && raw_stream) {
        // Bytes of audio have no error event: the response ends without its last
        // chunk and the connection closes, so the client sees a cut body, never a
        // shorter one that looks complete.
        keep_alive_ = false;
        outcome = "stream error: " + batch.error->message;
        stream_error = true;
        if (!first_written && !out.empty()) first_written = Clock::now();
        return true;
    }
    if (batch.finished && batch.error) {
        // After the commit point a failure must reach the client as an SSE
        // error event (the OpenAI SDK raises APIError), never a short stream.
        std::string event;
        if (tap) tap->stream_error(*batch.error, event);
        else surfaces::surface_for(info.endpoint).stream_error(*batch.error, event);
        chunk(out, event, chunked);
        outcome = "stream error: " + batch.error->message;
        stream_error = true;
    }
    if (!first_written && !out.empty()) first_written = Clock::now();
    if (!batch.finished) return false;
    if (chunked) out += "0\r\n\r\n";
    if (outcome.empty()) outcome = "ok";
    return true;
}

void ApiExchange::finish() {
    const dispatch::Plan& plan = routed.plan;
    RequestScope& sc = *scope;
    sc.status = status;
    sc.sample.stream_error = stream_error;
    const Clock::rep launched = launched_at.load(std::memory_order_acquire);
    if (first_written) {
        if (plan.stream) sc.sample.ttft_s = seconds(*first_written - t0);
        // Gateway overhead: handler start -> attempt 0 launched, plus winner commit -> first byte written.
        if (traced && traced->trace().winner && launched != 0)
            sc.sample.overhead_s = seconds(Clock::time_point(Clock::duration(launched)) - t0) +
                                   std::max(0.0, seconds(*first_written - traced->trace().committed_at));
    }
    const bool per_attempt = (g.strat && traced) || g.json_log;
    const auto records = per_attempt ? executor->records() : std::vector<dispatch::AttemptRecord>{};
    if (g.strat && traced) sc.strat = strategy_request(records);
    if (g.json_log) json_detail(records);
    else if (spdlog::should_log(spdlog::level::info)) log_line();  // nothing to format at log_level warn
    sc.record();
    release();
    if (on_finish) on_finish();
}

metrics::StrategyStats::Request ApiExchange::strategy_request(const std::vector<dispatch::AttemptRecord>& records) const {
    const dispatch::Plan& plan = routed.plan;
    const auto& tr = traced->trace();
    metrics::StrategyStats::Request sr;
    sr.group = scope->sample.group;
    sr.stream = plan.stream;
    sr.hedges = tr.hedges;
    sr.hedge_won = tr.hedge_won;
    sr.race = tr.race;
    sr.winner = tr.winner ? static_cast<int>(*tr.winner) : -1;
    for (size_t i = 0; i < records.size(); ++i) {
        const auto& r = records[i];
        metrics::StrategyStats::Attempt a;
        a.deployment = plan.attempts[i].deployment;
        a.launched = r.state != dispatch::AttemptState::NotLaunched && r.state != dispatch::AttemptState::Refused;
        a.success = r.state == dispatch::AttemptState::Won;
        // A shadowed primary lost too; its true latency is recorded when it finishes.
        a.lost = (r.state == dispatch::AttemptState::Cancelled || r.state == dispatch::AttemptState::Shadow) &&
                 tr.winner && *tr.winner != i;
        a.ttft_ms = r.ttft_ms;
        a.total_ms = r.total_ms;
        sr.attempts.push_back(a);
    }
    return sr;
}

std::string ApiExchange::attempts_json(const std::vector<dispatch::AttemptRecord>& records) const {
    const dispatch::Plan& plan = routed.plan;
    std::string list = "[";
    for (size_t i = 0; i < records.size(); ++i) {
        const auto& r = records[i];
        if (r.state == dispatch::AttemptState::NotLaunched) continue;
        logfmt::Fields a;
        a.integer("attempt", static_cast<int64_t>(i))
            .str("deployment", g.cfg->deployments[plan.attempts[i].deployment].id)
            .str("outcome", attempt_state_name(r.state));
        if (r.ttft_ms >= 0) a.num("ttft_ms", r.ttft_ms);
        if (r.total_ms >= 0) a.num("total_ms", r.total_ms);
        if (r.state == dispatch::AttemptState::Failed) {
            a.str("error_class", error_class_name(r.error_class));
            if (r.http_status) a.integer("http_status", r.http_status);
        }
        if (list.size() > 1) list += ',';
        list += a.object();
    }
    list += ']';
    return list;
}

void ApiExchange::json_detail(const std::vector<dispatch::AttemptRecord>& records) {
    const dispatch::Plan& plan = routed.plan;
    const auto& tr = traced->trace();
    logfmt::Fields& f = scope->detail;
    f.boolean("stream", plan.stream);
    f.integer("attempts", executor->launched());
    f.raw("deployments", attempts_json(records));
    if (tr.winner) f.str("winner", g.cfg->deployments[plan.attempts[*tr.winner].deployment].id);
    else f.null("winner");
    if (ttft_ms >= 0) f.num("ttft_ms", ttft_ms);
    if (tr.prompt_tokens >= 0 || tr.completion_tokens >= 0)
        f.raw("tokens", logfmt::Fields()
                            .integer("prompt", tr.prompt_tokens)
                            .integer("completion", tr.completion_tokens)
                            .object());
    if (tr.retries) f.integer("retries", tr.retries);
    if (tr.hedges) f.integer("hedges", tr.hedges);
    if (tr.race) f.boolean("race", true);
    if (!routed.note.empty()) f.str("note", routed.note);
    f.str("outcome", outcome);
    if (info.metadata_json != "{}") {
        auto meta = info.metadata_json.size() <= 8192 ? logfmt::compact_json(info.metadata_json) : std::nullopt;
        f.raw("metadata", meta ? *meta : std::string("{\"_dropped\":\"too large or invalid\"}"));
    }
}

void ApiExchange::log_line() const {
    const RequestScope& sc = *scope;
    const double total_ms = ms_since(t0);
    std::string meta = info.metadata_json == "{}" ? std::string() : " metadata=" + info.metadata_json.substr(0, 256);
    spdlog::info(
        "{}{}{} {} model={} deployment={} status={} attempts={} ttft_ms={:.1f} total_ms={:.1f} stream={}{}{}{} {}",
        sc.request_id, sc.client_request_id.empty() ? "" : " client_request_id=", sc.client_request_id, uri,
        info.model_group, deployment_id, status, executor->launched(), ttft_ms, total_ms, routed.plan.stream,
        routed.note.empty() ? "" : " note=", routed.note, meta, outcome);
}

bool AllResultsExchange::render(ClientChannel::Batch& batch, std::string& out) {
    const auto parts = static_cast<uint32_t>(source->size());
    if (!batch.committed) {
        error_response(out, batch.error ? *batch.error : ApiError::internal("no result"), parts);
        return true;
    }
    const AllResultsSource::Part& first = *source->first_ok();
    header("x-tailgate-deployment", first.deployment);
    header("x-tailgate-model-group", first.group);
    header("x-tailgate-attempts", std::to_string(parts));
    head(out, 200, "application/json", static_cast<int64_t>(batch.bytes.size()));
    out += batch.bytes;
    status = 200;
    outcome = "ok";
    return true;
}

void AllResultsExchange::finish() {
    RequestScope& sc = *scope;
    sc.status = status;
    if (!g.json_log && spdlog::should_log(spdlog::level::info))
        spdlog::info("{} {} model={} all-results groups={} status={} total_ms={:.1f} {}", sc.request_id, uri, model,
                     source->size(), status, ms_since(t0), outcome);
    sc.record();
    release();
}


}  // namespace tailgate::server
