// The Responses API's stored responses (control/response_store.hpp):
// previous_response_id resolved before routing, the finished response kept when
// the exchange ends, and GET / DELETE /v1/responses/{id} (+ /input_items).
//
// The gateway, not the upstream, keeps the conversation: a previous response
// may have come from any deployment (a hedge's winner, another provider, one
// reached through chat), so every deployment gets the whole conversation as
// input, and no previous_response_id goes upstream.
#include "server/gateway_impl.hpp"

#include "surfaces/responses/request.hpp"
#include "surfaces/responses/tap.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

namespace tailgate::server {

namespace responses = surfaces::responses;

namespace {

// Turns replayed for one previous_response_id at most (older ones are left out).
constexpr size_t kMaxTurns = 256;

ApiError no_response(const std::string& id, std::string param = "") {
    ApiError e = param.empty() ? ApiError::not_found("Response with id '" + id + "' not found.")
                               : ApiError::bad_request("Previous response with id '" + id + "' not found.", param,
                                                       "previous_response_not_found");
    return e;
}

std::string query_value(std::string_view uri, std::string_view name) {
    const size_t q = uri.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = uri.substr(q + 1);
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        if (pair.substr(0, name.size()) == name && pair.size() > name.size() && pair[name.size()] == '=')
            return std::string(pair.substr(name.size() + 1));
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

// One input item as input_items lists it: typed, with an id (its own, or one
// derived from the response's), message text as content parts.
void listed_item(rapidjson::Value& item, const std::string& id, rapidjson::Document::AllocatorType& a) {
    if (!item.HasMember("type")) item.AddMember("type", "message", a);
    if (auto own = item.FindMember("id"); own == item.MemberEnd()) item.AddMember("id", rapidjson::Value(id.c_str(), a), a);
    else if (!own->value.IsString()) own->value.SetString(id.c_str(), static_cast<rapidjson::SizeType>(id.size()), a);
    auto c = item.FindMember("content");
    if (c == item.MemberEnd() || !c->value.IsString()) return;
    const auto role = item.FindMember("role");
    const bool assistant = role != item.MemberEnd() && role->value.IsString() &&
                           std::string_view(role->value.GetString()) == "assistant";
    rapidjson::Value part(rapidjson::kObjectType);
    part.AddMember("type", rapidjson::StringRef(assistant ? "output_text" : "input_text"), a);
    part.AddMember("text", c->value, a);  // moves the string
    rapidjson::Value parts(rapidjson::kArrayType);
    parts.PushBack(part, a);
    c->value = parts;
}

// GET /v1/responses/{id}/input_items: OpenAI's list page (limit 1-100, default
// 20; order desc by default; after = an item id).
std::variant<std::string, ApiError> input_items_page(const control::StoredResponse& r, std::string_view uri) {
    rapidjson::Document d;
    d.Parse(r.input_items.data(), r.input_items.size());
    if (d.HasParseError() || !d.IsArray()) return ApiError::internal("stored input items are unreadable");
    const std::string suffix = r.id.substr(r.id.find('_') + 1);
    std::vector<rapidjson::SizeType> objects;  // what a client sent as input may hold anything; list the items
    for (rapidjson::SizeType i = 0; i < d.Size(); ++i) {
        if (!d[i].IsObject()) continue;
        listed_item(d[i], "msg_" + suffix + "_" + std::to_string(i), d.GetAllocator());
        objects.push_back(i);
    }
    int limit = 20;
    if (auto l = query_value(uri, "limit"); !l.empty()) {
        auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
        if (ec != std::errc() || p != l.data() + l.size() || limit < 1 || limit > 100)
            return ApiError::bad_request("'limit' must be an integer between 1 and 100", "limit", "invalid_value");
    }
    const std::string order = query_value(uri, "order");
    if (!order.empty() && order != "asc" && order != "desc")
        return ApiError::bad_request("'order' must be asc or desc", "order", "invalid_value");
    std::vector<rapidjson::SizeType> idx(objects);
    if (order != "asc") std::reverse(idx.begin(), idx.end());
    size_t from = 0;
    if (auto after = query_value(uri, "after"); !after.empty()) {
        while (from < idx.size() && std::string_view(d[idx[from]]["id"].GetString()) != after) ++from;
        ++from;  // past it (past the end when unknown: an empty page)
    }
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("object"), w.String("list");
    w.Key("data"), w.StartArray();
    std::string first, last;
    const size_t end = std::min(idx.size(), from + static_cast<size_t>(limit));
    for (size_t k = from; k < end; ++k) {
        const auto& item = d[idx[k]];
        if (first.empty()) first = item["id"].GetString();
        last = item["id"].GetString();
        item.Accept(w);
    }
    w.EndArray();
    w.Key("first_id"), first.empty() ? w.Null() : w.String(first.c_str());
    w.Key("last_id"), last.empty() ? w.Null() : w.String(last.c_str());
    w.Key("has_more"), w.Bool(end < idx.size());
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

// previous_response_id: re-parse the request with the stored conversation before it.
bool Gateway::Impl::resolve_previous(ApiCall& a, std::string_view body) {
    const auto& ctx = responses::context_of(*a.parsed);
    if (ctx.previous_response_id.empty()) return true;
    const auto chain = response_store->chain(ctx.previous_response_id, caller_key_hash, kMaxTurns);
    if (chain.empty()) {
        fail_api(a, no_response(ctx.previous_response_id, "previous_response_id"));
        return false;
    }
    std::vector<responses::Turn> turns;
    turns.reserve(chain.size());
    for (const auto& r : chain) turns.push_back(responses::Turn{r.input_items, r.output});
    auto parsed = responses::parse_request(body, turns);
    if (auto* e = std::get_if<ApiError>(&parsed)) {
        fail_api(a, *e);
        return false;
    }
    a.parsed = std::make_shared<const ParsedBody>(std::move(std::get<ParsedBody>(parsed)));
    return true;
}

// The exchange's tap for a Responses request, and what keeps its answer (store: true).
void Gateway::Impl::keep_response(ApiCall& a, ApiExchange& x) {
    const auto ctx = std::static_pointer_cast<const responses::Context>(a.parsed->context);
    auto tap = std::make_unique<responses::Tap>(ctx->stream, ctx->store, ctx->previous_response_id);
    if (ctx->store) {
        x.on_finish = [store = response_store, owner = caller_key_hash, ctx, t = tap.get()] {
            if (t->finished().empty()) return;  // failed or cut short: nothing to chain from
            control::StoredResponse r;
            r.id = t->id();
            r.owner = owner;
            r.created_at = t->created_at() ? t->created_at() : ctx->created_at;
            r.previous_id = ctx->previous_response_id;
            r.input_items = ctx->input_items;
            r.output = t->output();
            r.response = t->finished();
            store->put(std::move(r));
        };
    }
    x.tap = std::move(tap);
}

void Gateway::Impl::response_get(Call& c) {
    const std::string& arg = c.arg;
    constexpr std::string_view kItems = "/input_items";
    const bool items = arg.size() > kItems.size() && arg.compare(arg.size() - kItems.size(), kItems.size(), kItems) == 0;
    const std::string id = items ? arg.substr(0, arg.size() - kItems.size()) : arg;
    const auto r = response_store->get(id, caller_key_hash);
    if (!r) return send_error(c.req, no_response(id));
    if (!items) return send_json(c.req, 200, r->response);
    auto page = input_items_page(*r, c.req.uri());
    if (auto* e = std::get_if<ApiError>(&page)) return send_error(c.req, *e);
    send_json(c.req, 200, std::get<std::string>(page));
}

void Gateway::Impl::response_delete(Call& c) {
    if (!response_store->remove(c.arg, caller_key_hash)) return send_error(c.req, no_response(c.arg));
    send_json(c.req, 200, "{\"id\":" + json_quote(c.arg) + ",\"object\":\"response\",\"deleted\":true}");
}

}  // namespace tailgate::server
