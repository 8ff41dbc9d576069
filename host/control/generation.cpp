#include "control/generation.hpp"
#include "plugin/search_path.hpp"

#include <chrono>
#include <cstdlib>

namespace tailgate::control {

GenerationPtr build_generation(std::shared_ptr<const config::Config> cfg, uint64_t revision,
                               const Generation* previous, const std::set<std::string>& drained) {
    auto g = std::make_shared<Generation>();
    g->revision = revision;
    g->config = cfg;
    g->plugin_dirs = plugin::search_path(cfg->router.plugin_paths, std::getenv("TAILGATE_PLUGIN_PATH"));
    g->registry = std::make_unique<plugin::Registry>(g->plugin_dirs);
    g->router = std::make_unique<router::Router>(cfg, *g->registry);
    if (cfg->general.metrics) {
        g->prom = std::make_unique<metrics::Metrics>(*cfg);
        std::vector<std::string> dep_ids;
        std::vector<uint32_t> dep_groups;
        for (uint32_t d = 0; d < cfg->deployments.size(); ++d) {
            dep_ids.push_back(cfg->deployments[d].id);
            dep_groups.push_back(g->prom->group_of(d));
        }
        g->strat = std::make_unique<metrics::StrategyStats>(cfg->model_groups(), std::move(dep_ids),
                                                            std::move(dep_groups));
        g->router->set_health_listener(
            [m = g->prom.get(), st = g->strat.get()](uint32_t d, Health from, Health to) {
                m->health_changed(d, from, to);
                if (to == Health::Cooling && from != Health::Cooling)
                    st->cooldown(d, std::chrono::steady_clock::now());
            });
    }
    if (previous) g->router->adopt_state(*previous->router);
    for (const auto& id : drained)
        if (auto i = g->router->index_of(id)) g->router->set_drained(*i, true);
    return g;
}

}  // namespace tailgate::control
