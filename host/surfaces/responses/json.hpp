// Small RapidJSON helpers shared by the Responses surface's files.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

namespace tailgate::surfaces::responses::json {

using Value = rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A member that is present and not null; nullptr otherwise.
inline const Value* member(const Value& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(key);
    return it == obj.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

inline std::string_view str(const Value& obj, const char* key) {
    const Value* v = member(obj, key);
    return v && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength()) : std::string_view();
}

inline void put(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
inline void key(Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }

inline std::string text(const Value& v) {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    v.Accept(w);
    return {sb.GetString(), sb.GetSize()};
}

template <class Fill>
std::string build(Fill&& fill) {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    fill(w);
    return {sb.GetString(), sb.GetSize()};
}

// The text of a content value: a string, or the `text` of each part joined.
inline std::string joined_text(const Value& content) {
    if (content.IsString()) return {content.GetString(), content.GetStringLength()};
    std::string out;
    if (!content.IsArray()) return out;
    for (const auto& part : content.GetArray()) {
        std::string_view t = str(part, "text");
        if (t.empty()) t = str(part, "refusal");
        out.append(t);
    }
    return out;
}

}  // namespace tailgate::surfaces::responses::json
