#include "plugin/prices.hpp"

#include <tailgate/price_table.hpp>

namespace tailgate::plugin {

std::optional<ListPrice> list_price(const std::string& upstream_model) {
    const auto* p = prices::lookup(upstream_model.c_str());
    if (!p) return std::nullopt;
    return ListPrice{p->in, p->out};
}

}  // namespace tailgate::plugin
