#include "server/all_results.hpp"

namespace tailgate::server {

AllResultsSource::AllResultsSource(std::vector<Part> parts) : parts_(std::move(parts)) {
    for (auto& p : parts_)
        if (!p.channel) p.done = true;  // refused at routing: its error is the answer
}

void AllResultsSource::set_notify(std::function<void()> notify) {
    for (auto& p : parts_)
        if (p.channel) p.channel->set_notify(notify);
    std::lock_guard lk(mu_);
    notify_ = std::move(notify);
}

void AllResultsSource::notify_now() {
    std::function<void()> notify;
    {
        std::lock_guard lk(mu_);
        notify = notify_;
    }
    if (notify) notify();
}

bool AllResultsSource::take(ClientChannel::Batch& out) {
    if (delivered_) return false;
    bool all_done = true;
    ClientChannel::Batch b;
    for (auto& p : parts_) {
        while (!p.done && p.channel->take(b)) {
            if (b.attempt) {
                p.status = b.head.status;
                if (*b.attempt < p.deployment_ids.size()) p.deployment = p.deployment_ids[*b.attempt];
            }
            p.body += b.bytes;
            if (!b.committed && b.error) p.error = b.error;
            p.done = b.finished || b.attempt.has_value();  // non-stream: the commit carries the whole body
        }
        all_done = all_done && p.done;
    }
    if (!all_done) return false;
    delivered_ = true;

    out = ClientChannel::Batch{};
    out.finished = true;
    const ApiError* first_error = nullptr;
    for (const auto& p : parts_) {
        if (p.error) {
            if (!first_error) first_error = &*p.error;
        } else if (!first_ok_) {
            first_ok_ = &p;
        }
    }
    if (!first_ok_) {
        out.error = first_error ? *first_error : ApiError::internal("no result");
        return true;
    }
    auto body = merge(parts_, *first_ok_);
    if (!body) {
        first_ok_ = nullptr;
        out.error = ApiError::bad_gateway("upstream returned a non-JSON body", "upstream_protocol_error");
        return true;
    }
    out.committed = true;
    out.attempt = 0;
    out.head.status = 200;
    out.bytes = std::move(*body);
    return true;
}

std::optional<std::string> AllResultsSource::merge(const std::vector<Part>& parts, const Part& first_ok) {
    std::string results = "[";
    for (size_t i = 0; i < parts.size(); ++i) {
        const Part& p = parts[i];
        if (i) results += ',';
        results += "{\"model_group\":" + json_quote(p.group);
        if (p.error) {
            results += ",\"status\":" + std::to_string(p.error->status) + ",\"error\":";
            const std::string eb = p.error->body();
            results.append(eb, 9, eb.size() - 10);  // the inner {"message",...} object of {"error":{...}}
        } else {
            results += ",\"status\":" + std::to_string(p.status) + ",\"deployment\":" + json_quote(p.deployment) +
                       ",\"response\":" + (p.body.empty() ? std::string("null") : p.body);
        }
        results += '}';
    }
    results += ']';
    std::string body = first_ok.body;
    const size_t close = body.find_last_of('}');
    if (close == std::string::npos) return std::nullopt;
    body.insert(close, ",\"results\":" + results);
    return body;
}

void AllResultsSource::cancel() {
    for (auto& p : parts_)
        if (p.executor) p.executor->cancel();
}

void AllResultsSource::resume_reading() {
    for (auto& p : parts_)
        if (p.executor) p.executor->resume_reading();
}

void AllResultsSource::close() {
    for (auto& p : parts_)
        if (p.channel) p.channel->close();
    std::lock_guard lk(mu_);
    notify_ = nullptr;  // it holds the relay
}

}  // namespace tailgate::server
