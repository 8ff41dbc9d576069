#include "providers/request.hpp"

#include "common/api_error.hpp"

#include <algorithm>

namespace tailgate::providers {

std::string ParsedBody::body_for(std::string_view upstream_model, const std::vector<std::string>& drop) const {
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
