// /team/*: new, info, update, delete, list. A team's models, limits and
// budget apply to each of its keys on top of the key's own.
#include "keys/api_util.hpp"
#include "keys/json.hpp"
#include "keys/repository.hpp"

#include <openssl/rand.h>

namespace tailgate::keys {

namespace {

using rapidjson::Document;

// A random UUID (version 4), as LiteLLM names teams.
std::string new_team_id() {
    unsigned char b[16];
    RAND_bytes(b, sizeof b);
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
    static const char* const kHex = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += kHex[b[i] >> 4];
        out += kHex[b[i] & 15];
    }
    return out;
}

TeamRecord existing_team(store::Connection& c, const std::string& id) {
    if (id.empty()) throw Refusal(ApiError::bad_request("'team_id' is required", "team_id", "missing_field"));
    auto t = find_team(c, id);
    if (!t) throw Refusal(ApiError::not_found("No team with team_id '" + id + "'", "team_not_found"));
    return *t;
}

}  // namespace

MgmtReply KeyApi::team_new(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        const TimeMs now = now_ms();
        TeamRecord t;
        t.created_at = t.updated_at = now;
        if (auto e = apply_team_fields(d, t, now)) return fail(*e);
        t.team_id = string_member(d, "team_id");
        if (t.team_id.empty()) t.team_id = new_team_id();
        if (t.team_id.size() > 128)
            return fail(ApiError::bad_request("'team_id' is longer than 128 bytes", "team_id", "invalid_field"));
        svc_.db().run([&](store::Connection& c) {
            if (find_team(c, t.team_id))
                throw Refusal(ApiError::bad_request("A team with team_id '" + t.team_id + "' already exists", "team_id",
                                                    "already_exists"));
            insert_team(c, t);
        });
        svc_.changed_team(t.team_id, t);
        return reply(200, team_json(t, 0));
    });
}

MgmtReply KeyApi::team_info(const MgmtRequest& r) {
    return guarded([&] {
        const std::string id = query_value(parse_query(r.query), "team_id");
        auto [t, keys] = svc_.db().run([&](store::Connection& c) {
            TeamRecord t = existing_team(c, id);
            return std::make_pair(t, keys_of_team(c, id));
        });
        std::string list = "[";
        for (size_t i = 0; i < keys.size(); ++i) list += (i ? "," : "") + key_json(keys[i], live_spend(svc_, keys[i]));
        return reply(200, "{\"team_id\":" + json_quote(t.team_id) + ",\"team_info\":" +
                              team_json(t, live_team_spend(svc_, t)) + ",\"keys\":" + list + "]}");
    });
}

MgmtReply KeyApi::team_update(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        const TimeMs now = now_ms();
        TeamRecord t = svc_.db().run([&](store::Connection& c) {
            TeamRecord t = existing_team(c, string_member(d, "team_id"));
            if (auto e = apply_team_fields(d, t, now)) throw Refusal(*e);
            t.updated_at = now;
            update_team(c, t);
            return t;
        });
        svc_.changed_team(t.team_id, t);
        return reply(200, "{\"team_id\":" + json_quote(t.team_id) + ",\"data\":" +
                              team_json(t, live_team_spend(svc_, t)) + "}");
    });
}

// Deleting a team deletes its keys too (LiteLLM does the same): a key must not
// outlive the limits and budget it was given through its team.
MgmtReply KeyApi::team_delete(const MgmtRequest& r) {
    return guarded([&] {
        Document d;
        if (auto e = parse_object(r.body, d)) return fail(*e);
        std::vector<std::string> ids;
        if (auto e = string_array(d, "team_ids", ids)) return fail(*e);
        if (ids.empty()) return fail(ApiError::bad_request("Give 'team_ids' to delete", "team_ids", "missing_field"));
        const TimeMs now = now_ms();
        auto tokens = svc_.db().run([&](store::Connection& c) {
            return c.transaction([&] {
                std::vector<std::string> tokens;
                for (const auto& id : ids) existing_team(c, id);
                for (const auto& id : ids) {
                    for (const KeyRecord& k : keys_of_team(c, id)) {
                        delete_key(c, k.token, now);
                        tokens.push_back(k.token);
                    }
                    delete_team(c, id, now);
                }
                return tokens;
            });
        });
        for (const auto& t : tokens) svc_.removed_key(t);
        for (const auto& id : ids) svc_.changed_team(id, std::nullopt);
        return reply(200, "{\"deleted_teams\":" + string_list_json(ids) + ",\"deleted_keys\":" +
                              std::to_string(tokens.size()) + "}");
    });
}

MgmtReply KeyApi::team_list(const MgmtRequest&) {
    return guarded([&] {
        auto teams = svc_.db().run([](store::Connection& c) { return list_teams(c); });
        std::string out = "[";
        for (size_t i = 0; i < teams.size(); ++i) out += (i ? "," : "") + team_json(teams[i], live_team_spend(svc_, teams[i]));
        return reply(200, out + "]");
    });
}

}  // namespace tailgate::keys
