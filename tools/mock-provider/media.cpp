#include "media.hpp"

#include "json_writer.hpp"

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace tailgate::mock {

namespace {

Reply bad(std::string_view message) {
  Reply r;
  r.status = 400;
  r.body = error_body(400, message);
  return r;
}

std::uint64_t fnv(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string b64(std::string_view data) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < data.size(); i += 3) {
    std::uint32_t v = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
    if (i + 2 < data.size()) v |= static_cast<unsigned char>(data[i + 2]);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < data.size() ? tbl[(v >> 6) & 63] : '=';
    out += i + 2 < data.size() ? tbl[v & 63] : '=';
  }
  return out;
}

// `n` pseudo-random bytes from a seed (splitmix64).
std::string bytes_from(std::uint64_t seed, std::size_t n) {
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    seed += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (int k = 0; k < 8 && out.size() < n; ++k) out += static_cast<char>((z >> (8 * k)) & 0xff);
  }
  return out;
}

constexpr const char* kCategories[] = {"harassment", "harassment/threatening", "hate", "hate/threatening",
                                       "illicit", "illicit/violent", "self-harm", "self-harm/instructions",
                                       "self-harm/intent", "sexual", "sexual/minors", "violence",
                                       "violence/graphic"};

std::string_view audio_type(std::string_view format) {
  if (format == "opus") return "audio/opus";
  if (format == "aac") return "audio/aac";
  if (format == "flac") return "audio/flac";
  if (format == "wav") return "audio/wav";
  if (format == "pcm") return "audio/pcm";
  return "audio/mpeg";
}

// The parts of a multipart form: name, filename (or none), value.
struct FormPart {
  std::string name;
  std::optional<std::string> filename;
  std::string_view value;
};

std::string param_of(std::string_view header, std::string_view key) {
  const std::string pat = std::string(key) + "=";
  std::size_t at = 0;
  while ((at = header.find(pat, at)) != std::string_view::npos) {
    if (at == 0 || header[at - 1] == ' ' || header[at - 1] == ';') break;
    at += pat.size();
  }
  if (at == std::string_view::npos) return {};
  std::string_view v = header.substr(at + pat.size());
  if (!v.empty() && v.front() == '"') {
    v.remove_prefix(1);
    return std::string(v.substr(0, v.find('"')));
  }
  return std::string(v.substr(0, v.find(';')));
}

bool parse_form(std::string_view ctype, std::string_view body, std::vector<FormPart>& parts, std::string& why) {
  if (ctype.substr(0, 19) != "multipart/form-data") {
    why = "expected multipart/form-data, got '" + std::string(ctype) + "'";
    return false;
  }
  const std::string boundary = param_of(ctype, "boundary");
  if (boundary.empty()) {
    why = "multipart/form-data without a boundary";
    return false;
  }
  const std::string delim = "--" + boundary;
  std::size_t pos = body.find(delim);
  if (pos == std::string_view::npos) {
    why = "boundary not found in the body";
    return false;
  }
  pos += delim.size();
  while (body.substr(pos, 2) == "\r\n") {
    pos += 2;
    const std::size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) break;
    const std::string_view head = body.substr(pos, head_end - pos);
    const std::size_t next = body.find("\r\n" + delim, head_end + 4);
    if (next == std::string_view::npos) break;
    FormPart p;
    p.name = param_of(head, "name");
    if (head.find("filename=") != std::string_view::npos) p.filename = param_of(head, "filename");
    p.value = body.substr(head_end + 4, next - head_end - 4);
    parts.push_back(std::move(p));
    pos = next + 2 + delim.size();
  }
  if (body.substr(pos, 2) != "--") {
    why = "malformed multipart body";
    return false;
  }
  return true;
}

}  // namespace

std::string speech_piece(const std::string& name, std::string_view input, std::string_view voice, int i) {
  return bytes_from(fnv(voice, fnv(input, fnv(name))) + static_cast<std::uint64_t>(i), 256);
}

Reply moderation_reply(const rapidjson::Document& doc, const ReplyContext& ctx) {
  auto in = doc.FindMember("input");
  if (in == doc.MemberEnd()) return bad("'input' is required");
  std::vector<std::string> texts;
  if (in->value.IsString()) {
    texts.emplace_back(in->value.GetString(), in->value.GetStringLength());
  } else if (in->value.IsArray()) {
    for (const auto& e : in->value.GetArray()) {
      if (e.IsString()) texts.emplace_back(e.GetString(), e.GetStringLength());
      else if (e.IsObject()) texts.emplace_back(str_member(e, "text"));  // multi-modal input items
      else return bad("'input' items must be strings or objects");
    }
  } else {
    return bad("'input' must be a string or an array");
  }
  std::string_view model = str_member(doc, "model");
  Reply rep;
  rep.model = model.empty() ? "omni-moderation-latest" : std::string(model);
  rep.body = to_json([&](Writer& w) {
    w.StartObject();
    key(w, "id");
    put(w, "modr-" + ctx.name + "-" + std::to_string(ctx.seq));
    key(w, "model");
    put(w, rep.model);
    key(w, "results");
    w.StartArray();
    for (const auto& t : texts) {
      const bool flagged = t.find("flag") != std::string::npos;
      w.StartObject();
      key(w, "flagged");
      w.Bool(flagged);
      key(w, "categories");
      w.StartObject();
      for (const char* c : kCategories) {
        key(w, c);
        w.Bool(flagged && std::string_view(c) == "violence");
      }
      w.EndObject();
      key(w, "category_scores");
      w.StartObject();
      for (const char* c : kCategories) {
        key(w, c);
        w.Double(flagged && std::string_view(c) == "violence" ? 0.9 : 0.001);
      }
      w.EndObject();
      key(w, "mock");
      put(w, ctx.name);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  });
  return rep;
}

// An images answer (generations, edits, variations): `n` items, each written
// by `item(w, i)` inside its object, and usage priced like gpt-image-1's.
template <class ItemFn>
std::string images_body(int n, int input_tokens, ItemFn&& item) {
  return to_json([&](Writer& w) {
    w.StartObject();
    key(w, "created");
    w.Int64(static_cast<std::int64_t>(std::time(nullptr)));
    key(w, "data");
    w.StartArray();
    for (int i = 0; i < n; ++i) {
      w.StartObject();
      item(w, i);
      w.EndObject();
    }
    w.EndArray();
    key(w, "usage");
    w.StartObject();
    key(w, "input_tokens");
    w.Int(input_tokens);
    key(w, "output_tokens");
    w.Int(100 * n);
    key(w, "total_tokens");
    w.Int(input_tokens + 100 * n);
    w.EndObject();
    w.EndObject();
  });
}

Reply image_reply(const rapidjson::Document& doc, const ReplyContext& ctx) {
  std::string_view prompt = str_member(doc, "prompt");
  if (prompt.empty()) return bad("'prompt' is required");
  int n = 1;
  if (auto it = doc.FindMember("n"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsInt() || it->value.GetInt() < 1 || it->value.GetInt() > 10) return bad("'n' must be 1 to 10");
    n = it->value.GetInt();
  }
  const bool url = str_member(doc, "response_format") == "url";
  Reply rep;
  rep.model = std::string(str_member(doc, "model"));
  rep.body = images_body(n, std::max(1, count_words(prompt)), [&](Writer& w, int i) {
    if (url) {
      key(w, "url");
      put(w, "https://images.mock.invalid/" + ctx.name + "/" + std::to_string(ctx.seq) + "-" + std::to_string(i) +
                 ".png");
    } else {
      key(w, "b64_json");
      put(w, b64("\x89PNG mock " + ctx.name + " " + std::string(prompt) + " " + std::to_string(i)));
    }
    key(w, "revised_prompt");
    put(w, std::string(prompt) + " (" + ctx.name + ")");
  });
  return rep;
}

Reply speech_reply(const rapidjson::Document& doc, const ReplyContext& ctx) {
  std::string_view input = str_member(doc, "input");
  if (input.empty()) return bad("'input' is required");
  std::string_view voice = str_member(doc, "voice");
  if (voice.empty()) return bad("'voice' is required");
  Reply rep;
  rep.model = std::string(str_member(doc, "model"));
  rep.stream = true;
  rep.stream_content_type = std::string(audio_type(str_member(doc, "response_format")));
  rep.end_event.clear();
  const int chunks = std::max(ctx.settings.chunks, 1);
  for (int i = 0; i < chunks; ++i) rep.steps.push_back({speech_piece(ctx.name, input, voice, i)});
  return rep;
}

// A multipart request's parts, by the boundary in its content-type header.
static bool parse_request_form(std::string_view body, const ReplyContext& ctx, std::vector<FormPart>& parts,
                               std::string& why) {
  std::string_view ctype;
  if (ctx.headers)
    for (const auto& [k, v] : *ctx.headers)
      if (k == "content-type") ctype = v;
  return parse_form(ctype, body, parts, why);
}

Reply transcription_reply(std::string_view body, bool translation, const ReplyContext& ctx) {
  std::vector<FormPart> parts;
  std::string why;
  if (!parse_request_form(body, ctx, parts, why)) return bad(why);
  const FormPart* file = nullptr;
  std::string_view model, format = "json";
  for (const auto& p : parts) {
    if (p.name == "file" && p.filename) file = &p;
    else if (p.name == "model") model = p.value;
    else if (p.name == "response_format") format = p.value;
  }
  if (!file) return bad("'file' is required (a file part)");
  if (model.empty()) return bad("you must provide a model parameter");
  const std::string text = std::string(translation ? "mock translation" : "mock transcription") + " of " +
                           *file->filename + " (" + std::to_string(file->value.size()) + " bytes) by " + ctx.name +
                           " with " + std::string(model);
  Reply rep;
  rep.model = std::string(model);
  if (format == "text") {
    rep.body = text + "\n";
    rep.content_type = "text/plain; charset=utf-8";
  } else if (format == "srt" || format == "vtt") {
    rep.body = (format == "vtt" ? "WEBVTT\n\n" : "1\n") + std::string("00:00:00,000 --> 00:00:01,000\n") + text + "\n";
    rep.content_type = "text/plain; charset=utf-8";
  } else {
    rep.body = to_json([&](Writer& w) {
      w.StartObject();
      key(w, "text");
      put(w, text);
      if (format == "verbose_json") {
        key(w, "task");
        put(w, translation ? "translate" : "transcribe");
        key(w, "language");
        put(w, "english");
        key(w, "duration");
        w.Double(static_cast<double>(file->value.size()) / 16000.0);
      }
      w.EndObject();
    });
  }
  return rep;
}

Reply image_form_reply(std::string_view body, bool variation, const ReplyContext& ctx) {
  std::vector<FormPart> parts;
  std::string why;
  if (!parse_request_form(body, ctx, parts, why)) return bad(why);
  std::vector<const FormPart*> images;
  std::string_view model, prompt, n_field, format;
  bool has_prompt = false;
  for (const auto& p : parts) {
    if (p.name == "image" || (!variation && p.name == "image[]")) {
      if (!p.filename) return bad("'" + p.name + "' must be a file part");
      images.push_back(&p);
    } else if (p.name == "model") {
      model = p.value;
    } else if (p.name == "prompt") {
      prompt = p.value;
      has_prompt = true;
    } else if (p.name == "n") {
      n_field = p.value;
    } else if (p.name == "response_format") {
      format = p.value;
    }
  }
  if (images.empty()) return bad("'image' is required (a file part)");
  if (variation && images.size() > 1) return bad("variations take one 'image'");
  if (!variation && (!has_prompt || prompt.empty())) return bad("'prompt' is required");
  int n = 1;
  if (!n_field.empty()) {
    try {
      n = std::stoi(std::string(n_field));
    } catch (...) {
      n = 0;
    }
    if (n < 1 || n > 10) return bad("'n' must be 1 to 10");
  }
  const bool url = format == "url";
  Reply rep;
  rep.model = model.empty() ? "dall-e-2" : std::string(model);
  std::string files;
  std::size_t total = 0;
  for (const auto* img : images) {
    if (!files.empty()) files += ", ";
    files += *img->filename;
    total += img->value.size();
  }
  const std::string kind = variation ? "variation" : "edit";
  rep.body = images_body(n, std::max(1, count_words(prompt)), [&](Writer& w, int i) {
    if (url) {
      key(w, "url");
      put(w, "https://images.mock.invalid/" + ctx.name + "/" + kind + "-" + std::to_string(ctx.seq) + "-" +
                 std::to_string(i) + ".png");
    } else {
      key(w, "b64_json");
      put(w, b64("\x89PNG mock " + kind + " " + ctx.name + " " + std::to_string(i) + ":" +
                 std::string(images.front()->value)));
    }
    key(w, "revised_prompt");
    put(w, (variation ? std::string("variation") : std::string(prompt)) + " (" + ctx.name + " with " + rep.model +
               ": " + files + ", " + std::to_string(total) + " bytes)");
  });
  return rep;
}

}  // namespace tailgate::mock
