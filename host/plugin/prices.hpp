// The SDK's built-in price table (<tailgate/price_table.hpp>, the one the cost
// strategy routes by), for the host's spend accounting.
#pragma once

#include <optional>
#include <string>

namespace tailgate::plugin {

struct ListPrice {
    double input = -1;   // USD per prompt token
    double output = -1;  // USD per completion token
};

// The table's price for an upstream model name ("openai/gpt-4o-2024-08-06"
// finds gpt-4o), or nullopt.
std::optional<ListPrice> list_price(const std::string& upstream_model);

}  // namespace tailgate::plugin
