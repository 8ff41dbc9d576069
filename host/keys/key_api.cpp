// /key/*: generate, info, update, delete, list, regenerate, block, unblock.
#include "keys/key_api.hpp"

#include "common/key_hash.hpp"
#include "keys/api_util.hpp"
#include "keys/key_json.hpp"
#include "keys/json.hpp"
#include "keys/repository.hpp"

namespace tailgate::keys {

namespace {

using rapidjson::Document;

// A key as given to the API: the key itself, or its token (64 hex digits).
std::string token_of(const std::string& key_or_token) {
    const bool is_token = key_or_token.size() == 64 &&
                          key_or_token.find_first_not_of("0123456789abcdef") == std::string::npos;
    return is_token ? key_or_token : key_token_hash(key_or_token);
}

std::optional<ApiError> check_custom_key(const std::string& key) {
    if (key.rfind("sk-", 0) != 0 || key.size() < 12 || key.size() > 256)
        return ApiError::bad_request("'key' must start with \"sk-\" and be 12 to 256 characters long", "key",
                                     "invalid_field");
    for (unsigned char c : key)
        if (c < 0x21 || c > 0x7e) return ApiError::bad_request("'key' must be printable ASCII", "key", "invalid_field");
    return std::nullopt;
}

// The key's team must exist; returns it.
std::optional<TeamRecord> team_for(store::Connection& c, const KeyRecord& k) {
    if (k.team_id.empty()) return std::nullopt;
    auto t = find_team(c, k.team_id);
    if (!t) throw Refusal(ApiError::bad_request("team_id '" + k.team_id + "' does not exist", "team_id", "team_not_found"));
    return t;
}

std::string with_key(const std::string& key, const std::string& info_json) {
    return "{\"key\":" + json_quote(key) + "," + info_json.substr(1);
}

KeyRecord existing(store::Connection& c, const std::string& key_or_token) {
    if (key_or_token.empty()) throw Refusal(ApiError::bad_request("'key' is required", "key", "missing_field"));
    auto k = find_key(c, token_of(key_or_token));
    if (!k) throw Refusal(ApiError::not_found("No such key", "key_not_found"));
    return *k;
}

}  // namespace

MgmtReply KeyApi::key_generate(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        const TimeMs now = now_ms();
        KeyRecord k;
        k.created_at = k.updated_at = now;
        if (auto e = apply_key_fields(d, k, now)) return fail(*e);
        std::string key = string_member(d, "key");
        if (key.empty()) key = new_key();
        else if (auto e = check_custom_key(key)) return fail(*e);
        k.token = key_token_hash(key);
        k.key_name = key_name_of(key);
        auto team = svc_.db().run([&](store::Connection& c) {
            auto t = team_for(c, k);
            insert_key(c, k);
            return t;
        });
        svc_.changed_key(k, team);
        return reply(200, with_key(key, key_json(k, 0)));
    });
}

MgmtReply KeyApi::key_info(const MgmtRequest& r) {
    return guarded([&] {
        const auto q = parse_query(r.query);
        auto it = q.find("key");
        const std::string key = it == q.end() ? std::string() : it->second;
        const KeyRecord k = svc_.db().run([&](store::Connection& c) { return existing(c, key); });
        return reply(200, "{\"key\":" + json_quote(k.token) + ",\"info\":" + key_json(k, live_spend(svc_, k)) + "}");
    });
}

MgmtReply KeyApi::key_update(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        const TimeMs now = now_ms();
        auto [k, team] = svc_.db().run([&](store::Connection& c) {
            KeyRecord k = existing(c, string_member(d, "key"));
            if (auto e = apply_key_fields(d, k, now)) throw Refusal(*e);
            k.updated_at = now;
            auto team = team_for(c, k);
            update_key(c, k);
            return std::make_pair(k, team);
        });
        svc_.changed_key(k, team);
        return reply(200, key_json(k, live_spend(svc_, k)));
    });
}

MgmtReply KeyApi::key_delete(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        std::vector<std::string> keys, aliases;
        if (auto e = string_array(d, "keys", keys)) return fail(*e);
        if (auto e = string_array(d, "key_aliases", aliases)) return fail(*e);
        if (keys.empty() && aliases.empty())
            return fail(ApiError::bad_request("Give 'keys' or 'key_aliases' to delete", "keys", "missing_field"));
        const TimeMs now = now_ms();
        auto deleted = svc_.db().run([&](store::Connection& c) {
            std::vector<std::string> tokens;
            for (const auto& k : keys)
                if (auto rec = find_key(c, token_of(k))) tokens.push_back(rec->token);
            for (const auto& a : aliases)
                if (auto rec = find_key_by_alias(c, a)) tokens.push_back(rec->token);
            c.transaction([&] {
                for (const auto& t : tokens) delete_key(c, t, now);
            });
            return tokens;
        });
        if (deleted.empty()) return fail(ApiError::not_found("None of the given keys exists", "key_not_found"));
        for (const auto& t : deleted) svc_.removed_key(t);
        return reply(200, "{\"deleted_keys\":" + string_list_json(deleted) + "}");
    });
}

MgmtReply KeyApi::key_list(const MgmtRequest& r) {
    return guarded([&] {
        const auto q = parse_query(r.query);
        KeyFilter f;
        f.team_id = query_value(q, "team_id");
        f.key_alias = query_value(q, "key_alias");
        f.user_id = query_value(q, "user_id");
        const int64_t page = std::max<int64_t>(1, query_int(q, "page", 1));
        const int64_t size = std::clamp<int64_t>(query_int(q, "size", 10), 1, 1000);
        f.limit = size;
        f.offset = (page - 1) * size;
        const bool full = query_value(q, "return_full_object") == "true";
        auto [keys, total] = svc_.db().run([&](store::Connection& c) {
            return std::make_pair(list_keys(c, f), count_keys(c, f));
        });
        std::string out = "{\"keys\":[";
        for (size_t i = 0; i < keys.size(); ++i) {
            if (i) out += ',';
            out += full ? key_json(keys[i], live_spend(svc_, keys[i])) : json_quote(keys[i].token);
        }
        out += "],\"total_count\":" + std::to_string(total) + ",\"current_page\":" + std::to_string(page) +
               ",\"total_pages\":" + std::to_string((total + size - 1) / size) + "}";
        return reply(200, out);
    });
}

// The same key record under a new key: settings and spend kept, the old key
// refused from now on. Fields of /key/update may be changed at the same time.
MgmtReply KeyApi::key_regenerate(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        // POST /key/{key}/regenerate names the key in the path, /key/regenerate in the body.
        static constexpr std::string_view kSuffix = "/regenerate";
        const std::string_view arg = r.arg;
        if (!arg.empty() && (arg.size() <= kSuffix.size() || arg.substr(arg.size() - kSuffix.size()) != kSuffix))
            return fail(ApiError::not_found("Unknown key management path", "unknown_url"));
        std::string old_key = arg.empty() ? string_member(d, "key") : std::string(arg.substr(0, arg.size() - kSuffix.size()));
        const TimeMs now = now_ms();
        std::string key = string_member(d, "new_key");
        if (key.empty()) key = new_key();
        else if (auto e = check_custom_key(key)) return fail(*e);
        // No spend write between reading the old key's spend and redirecting what is queued for it.
        auto writer = svc_.hold_writer();
        auto [old_rec, k, team] = svc_.db().run([&](store::Connection& c) {
            KeyRecord old_rec = existing(c, old_key);
            KeyRecord k = old_rec;
            if (auto e = apply_key_fields(d, k, now)) throw Refusal(*e);
            k.token = key_token_hash(key);
            k.key_name = key_name_of(key);
            k.updated_at = now;
            auto team = team_for(c, k);
            move_key(c, old_rec, k);
            return std::make_tuple(old_rec, *find_key(c, k.token), team);
        });
        svc_.regenerated_key(old_rec.token, k, team);
        return reply(200, with_key(key, key_json(k, live_spend(svc_, k))));
    });
}

MgmtReply KeyApi::key_block(const MgmtRequest& r) { return set_blocked(r, true); }
MgmtReply KeyApi::key_unblock(const MgmtRequest& r) { return set_blocked(r, false); }

MgmtReply KeyApi::set_blocked(const MgmtRequest& r, bool blocked) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        auto [k, team] = svc_.db().run([&](store::Connection& c) {
            KeyRecord k = existing(c, string_member(d, "key"));
            k.blocked = blocked;
            k.updated_at = now_ms();
            update_key(c, k);
            return std::make_pair(k, team_for(c, k));
        });
        svc_.changed_key(k, team);
        return reply(200, key_json(k, live_spend(svc_, k)));
    });
}

}  // namespace tailgate::keys
