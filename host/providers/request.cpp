#include "providers/request.hpp"

#include "common/api_error.hpp"

#include <algorithm>

namespace tailgate::providers {

std::string_view ParsedBody::value_of(const Span& sp) const {
    std::string_view member(members.data() + sp.begin, sp.end - sp.begin);
    // The key is a JSON string: skip it (escapes included), then the colon.
    size_t i = 1;
    while (i < member.size() && member[i] != '"') i += member[i] == '\\' ? 2 : 1;
    i = member.find(':', i + 1);
    if (i == std::string_view::npos) return {};
    std::string_view v = member.substr(i + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.front() == '\n' || v.front() == '\r'))
        v.remove_prefix(1);
    return v;
}

const ParsedBody::Span* ParsedBody::find(std::string_view key) const {
    for (const Span& sp : spans)
        if (sp.key == key) return &sp;
    return nullptr;
}

std::string ParsedBody::body_for(std::string_view upstream_model, const std::vector<std::string>& drop) const {
    if (form) return form->with_field("model", upstream_model);
    std::string out;
    out.reserve(members.size() + upstream_model.size() + 16);
    out += "{\"model\":";
    out += '"';
    json_escape_into(out, upstream_model);
    out += '"';
    if (drop.empty()) {
        if (!members.empty()) {
            out += ',';
            out += members;
        }
    } else {
        for (const Span& sp : spans) {
            if (std::find(drop.begin(), drop.end(), sp.key) != drop.end()) continue;
            out += ',';
            out.append(members, sp.begin, sp.end - sp.begin);
        }
    }
    out += '}';
    return out;
}

}  // namespace tailgate::providers
