// The providers the config accepts (the `<provider>/` prefix of
// litellm_params.model), each with its codec and defaults. A new provider is
// one line in kProviders (registry.cpp), plus a codec directory when its wire
// format or addressing is new (see codec.hpp).
#pragma once

#include "providers/codec.hpp"

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::providers {

struct Provider {
    std::string_view name;                // the config prefix, e.g. "groq"
    const Codec& (*codec)();              // its codec (a shared, stateless instance)
    const char* default_api_base;         // nullptr: api_base required
    std::array<const char*, 3> key_env;   // conventional env vars used when api_key is absent, in order
    // Path used when api_base names a bare origin (Ollama serves its OpenAI API under /v1).
    const char* bare_origin_path = nullptr;
    // OpenAI parameters this provider documents as refused: dropped under drop_params.
    std::span<const std::string_view> rejected_params = {};
};

// nullptr when unknown.
const Provider* find_provider(std::string_view name);
// Every provider's name, in table order (for error messages).
const std::vector<std::string>& provider_names();

}  // namespace tailgate::providers
