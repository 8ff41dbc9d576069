// The mock's small JSON-writing helpers (RapidJSON), shared by its API files.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tailgate::mock {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

inline void put(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
inline void key(Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }

inline std::string to_json(const std::function<void(Writer&)>& fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.SetMaxDecimalPlaces(6);
  fill(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// {"error":{...}}, the error body OpenAI and Google share; `fill` writes the inner members.
inline std::string error_object(const std::function<void(Writer&)>& fill) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "error");
    w.StartObject();
    fill(w);
    w.EndObject();
    w.EndObject();
  });
}

// A string member of an object; "" when absent or not a string.
inline std::string_view str_member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace tailgate::mock
