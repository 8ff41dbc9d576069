#include "common/json_flatten.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tailgate {

namespace {

void flatten(const rapidjson::Value& v, const std::string& prefix, FlatPairs& out, int depth) {
    if (v.IsObject() && depth < 8) {
        for (const auto& m : v.GetObject()) {
            std::string key = prefix.empty() ? m.name.GetString() : prefix + "." + m.name.GetString();
            flatten(m.value, key, out, depth + 1);
        }
        return;
    }
    if (v.IsString()) {
        out.emplace_back(prefix, std::string(v.GetString(), v.GetStringLength()));
    } else if (v.IsBool()) {
        out.emplace_back(prefix, v.GetBool() ? "true" : "false");
    } else if (v.IsNull()) {
        out.emplace_back(prefix, "");
    } else {
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        v.Accept(w);
        out.emplace_back(prefix, std::string(buf.GetString(), buf.GetSize()));
    }
}

}  // namespace

FlatPairs flatten_json_object(std::string_view json) {
    FlatPairs out;
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject()) return out;
    flatten(d, "", out, 0);
    return out;
}

}  // namespace tailgate
