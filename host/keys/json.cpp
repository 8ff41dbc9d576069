#include "keys/json.hpp"

#include "common/api_error.hpp"

#include <rapidjson/document.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tailgate::keys {

std::vector<std::string> string_list(const std::string& json) {
    std::vector<std::string> out;
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError() || !d.IsArray()) return out;
    for (const auto& v : d.GetArray())
        if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
    return out;
}

std::string string_list_json(const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        out += json_quote(v[i]);
    }
    return out + "]";
}

std::string number_json(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[40];
    for (int precision = 15; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

}  // namespace tailgate::keys
