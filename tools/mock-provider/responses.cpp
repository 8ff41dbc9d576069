#include "responses.hpp"

#include <algorithm>
#include <ctime>
#include <functional>

#include "json_writer.hpp"

namespace tailgate::mock {
namespace {

using Value = rapidjson::Value;

int words_of_content(const Value& content) {
  if (content.IsString()) return count_words({content.GetString(), content.GetStringLength()});
  int n = 0;
  if (content.IsArray())
    for (const auto& part : content.GetArray()) n += count_words(str_member(part, "text"));
  return n;
}

int input_words(const Value& input) {
  if (input.IsString()) return count_words({input.GetString(), input.GetStringLength()});
  int n = 0;
  for (const auto& item : input.GetArray()) {
    if (!item.IsObject()) continue;
    if (auto c = item.FindMember("content"); c != item.MemberEnd()) n += words_of_content(c->value);
    n += count_words(str_member(item, "output"));
  }
  return std::max(n, 1);
}

// What the mock answers: text (in pieces, one per step) or one function call.
struct Answer {
  bool call = false;
  std::vector<std::string> pieces;  // their concatenation is the text / the arguments
  std::string text() const {
    std::string t;
    for (const auto& p : pieces) t += p;
    return t;
  }
  std::string call_id, name;
};

// A function call unless tools are absent, disabled, or a tool result came back last.
std::string call_name(const rapidjson::Document& doc, const Value& input) {
  auto tools = doc.FindMember("tools");
  if (tools == doc.MemberEnd() || !tools->value.IsArray() || tools->value.Empty()) return {};
  if (input.IsArray() && !input.Empty() && str_member(input[input.Size() - 1], "type") == "function_call_output")
    return {};
  std::string name;
  if (auto tc = doc.FindMember("tool_choice"); tc != doc.MemberEnd()) {
    if (tc->value.IsString() && std::string_view(tc->value.GetString()) == "none") return {};
    name = str_member(tc->value, "name");
  }
  if (name.empty()) name = str_member(tools->value[0], "name");
  return name.empty() ? std::string("tool") : name;
}

std::vector<std::string> split(const std::string& s, int parts) {
  std::vector<std::string> out;
  const auto n = static_cast<std::size_t>(std::max(1, std::min<int>(parts, static_cast<int>(s.size()))));
  for (std::size_t p = 0; p < n; ++p) {
    const std::size_t from = s.size() * p / n, to = s.size() * (p + 1) / n;
    out.push_back(s.substr(from, to - from));
  }
  return out;
}

bool wants_json(const rapidjson::Document& doc) {
  auto text = doc.FindMember("text");
  if (text == doc.MemberEnd() || !text->value.IsObject()) return false;
  auto f = text->value.FindMember("format");
  if (f == text->value.MemberEnd()) return false;
  const auto type = str_member(f->value, "type");
  return type == "json_schema" || type == "json_object";
}

Answer answer(const rapidjson::Document& doc, const Value& input, const ReplyContext& ctx) {
  Answer a;
  const int chunks = std::max(ctx.settings.chunks, 0);
  const std::string suffix = ctx.name + "_" + std::to_string(ctx.seq);
  a.name = call_name(doc, input);
  if (!a.name.empty()) {
    a.call = true;
    a.call_id = "call_" + suffix;
    a.pieces = split(R"({"mock":")" + ctx.name + "\"}", std::max(chunks, 1));
    return a;
  }
  std::vector<std::string> words;
  for (int i = 0; i < chunks; ++i) words.push_back((i ? " " : "") + ctx.name + "-" + std::to_string(i));
  if (wants_json(doc)) {
    std::string joined;
    for (const auto& w : words) joined += w;
    a.pieces = split(to_json([&](Writer& w) {
                       w.StartObject();
                       key(w, "mock");
                       put(w, ctx.name);
                       key(w, "words");
                       put(w, joined);
                       w.EndObject();
                     }),
                     std::max(chunks, 1));
  } else {
    a.pieces = std::move(words);
  }
  return a;
}

struct Meta {
  std::string id, item_id, model;
  std::int64_t created_at = 0;
  int input_tokens = 1, output_tokens = 0;
};

void item(Writer& w, const Meta& m, const Answer& a, bool done) {
  const std::string text = done ? a.text() : std::string();
  w.StartObject();
  key(w, "id");
  put(w, m.item_id);
  key(w, "type");
  put(w, a.call ? "function_call" : "message");
  key(w, "status");
  put(w, done ? "completed" : "in_progress");
  if (a.call) {
    key(w, "arguments");
    put(w, text);
    key(w, "call_id");
    put(w, a.call_id);
    key(w, "name");
    put(w, a.name);
  } else {
    key(w, "role");
    put(w, "assistant");
    key(w, "content");
    w.StartArray();
    if (done) {
      w.StartObject();
      key(w, "type");
      put(w, "output_text");
      key(w, "text");
      put(w, text);
      key(w, "annotations");
      w.StartArray();
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

void response(Writer& w, const Meta& m, const Answer& a, bool done) {
  w.StartObject();
  key(w, "id");
  put(w, m.id);
  key(w, "object");
  put(w, "response");
  key(w, "created_at");
  w.Int64(m.created_at);
  key(w, "status");
  put(w, done ? "completed" : "in_progress");
  key(w, "error");
  w.Null();
  key(w, "model");
  put(w, m.model);
  key(w, "output");
  w.StartArray();
  if (done) item(w, m, a, true);
  w.EndArray();
  key(w, "usage");
  if (!done) {
    w.Null();
  } else {
    w.StartObject();
    key(w, "input_tokens");
    w.Int(m.input_tokens);
    key(w, "output_tokens");
    w.Int(m.output_tokens);
    key(w, "total_tokens");
    w.Int(m.input_tokens + m.output_tokens);
    w.EndObject();
  }
  w.EndObject();
}

// Typed SSE events, numbered in order.
class Events {
 public:
  std::string operator()(std::string_view type, const std::function<void(Writer&)>& fill) {
    std::string out = "event: ";
    out += type;
    out += "\ndata: ";
    out += to_json([&](Writer& w) {
      w.StartObject();
      key(w, "type");
      put(w, type);
      key(w, "sequence_number");
      w.Uint64(seq_++);
      fill(w);
      w.EndObject();
    });
    out += "\n\n";
    return out;
  }

 private:
  std::uint64_t seq_ = 0;
};

void where(Writer& w, const Meta& m, bool part) {
  key(w, "item_id");
  put(w, m.item_id);
  key(w, "output_index");
  w.Int(0);
  if (part) {
    key(w, "content_index");
    w.Int(0);
  }
}

void text_part(Writer& w, std::string_view text) {
  w.StartObject();
  key(w, "type");
  put(w, "output_text");
  key(w, "text");
  put(w, text);
  key(w, "annotations");
  w.StartArray();
  w.EndArray();
  w.EndObject();
}

void stream(Reply& rep, const Meta& m, const Answer& a) {
  Events ev;
  auto with_response = [&](bool done) { return [&, done](Writer& w) { key(w, "response"), response(w, m, a, done); }; };
  rep.first.push_back(ev("response.created", with_response(false)));
  rep.first.push_back(ev("response.in_progress", with_response(false)));
  const auto added = [&](Writer& w) {
    key(w, "output_index"), w.Int(0);
    key(w, "item"), item(w, m, a, false);
  };
  const char* delta_type = a.call ? "response.function_call_arguments.delta" : "response.output_text.delta";
  for (std::size_t i = 0; i < a.pieces.size(); ++i) {
    std::vector<std::string> step;
    if (i == 0) {
      step.push_back(ev("response.output_item.added", added));
      if (!a.call)
        step.push_back(ev("response.content_part.added", [&](Writer& w) {
          where(w, m, true);
          key(w, "part"), text_part(w, "");
        }));
    }
    step.push_back(ev(delta_type, [&](Writer& w) {
      where(w, m, !a.call);
      key(w, "delta"), put(w, a.pieces[i]);
    }));
    rep.steps.push_back(std::move(step));
  }
  const std::string full = a.text();
  if (a.call) {
    rep.tail.push_back(ev("response.function_call_arguments.done", [&](Writer& w) {
      where(w, m, false);
      key(w, "arguments"), put(w, full);
    }));
  } else {
    rep.tail.push_back(ev("response.output_text.done", [&](Writer& w) {
      where(w, m, true);
      key(w, "text"), put(w, full);
    }));
    rep.tail.push_back(ev("response.content_part.done", [&](Writer& w) {
      where(w, m, true);
      key(w, "part"), text_part(w, full);
    }));
  }
  rep.tail.push_back(ev("response.output_item.done", [&](Writer& w) {
    key(w, "output_index"), w.Int(0);
    key(w, "item"), item(w, m, a, true);
  }));
  rep.tail.push_back(ev("response.completed", with_response(true)));
}

Reply bad(std::string_view message) {
  Reply r;
  r.status = 400;
  r.body = error_body(400, message);
  return r;
}

}  // namespace

bool is_responses_end(std::string_view event) { return event.substr(0, 26) == "event: response.completed\n"; }

Reply responses_reply(const rapidjson::Document& doc, const Route& r, const ReplyContext& ctx) {
  Meta m;
  m.model = str_member(doc, "model");
  if (m.model.empty()) m.model = r.deployment;
  if (m.model.empty()) return bad("you must provide a model parameter");
  auto input = doc.FindMember("input");
  if (input == doc.MemberEnd() || !(input->value.IsString() || input->value.IsArray()))
    return bad("'input' must be a string or an array of input items");
  if (doc.HasMember("previous_response_id")) return bad("mock: previous_response_id is not kept here");
  bool is_stream = false;
  if (auto s = doc.FindMember("stream"); s != doc.MemberEnd() && !s->value.IsNull()) {
    if (!s->value.IsBool()) return bad("'stream' must be a boolean");
    is_stream = s->value.GetBool();
  }
  const Answer a = answer(doc, input->value, ctx);
  const std::string suffix = ctx.name + "_" + std::to_string(ctx.seq);
  m.id = "resp_" + suffix;
  m.item_id = (a.call ? "fc_" : "msg_") + suffix;
  m.created_at = static_cast<std::int64_t>(std::time(nullptr));
  m.input_tokens = input_words(input->value);
  m.output_tokens = std::max(ctx.settings.chunks, 0);

  Reply rep;
  rep.model = m.model;
  rep.stream = is_stream;
  if (is_stream) stream(rep, m, a);
  else rep.body = to_json([&](Writer& w) { response(w, m, a, true); });
  return rep;
}

}  // namespace tailgate::mock
