#include "control/generation.hpp"
#include "plugin/search_path.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace tailgate::control {

namespace {

std::string file_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) +
           "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size);
}

// A private directory of plugin copies, removed once the generation's instances
// exist (the mappings stay; nothing loads from it later).
struct CopyDir {
    std::filesystem::path path;
    ~CopyDir() {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
};

// The dynamic loader returns the library already loaded from a path, so a
// plugin rebuilt in place would keep running its old code while an older
// generation still holds it. A plugin whose file changed since `previous`
// loaded it (and from then on) is loaded from a private copy instead: a new
// path, hence new code, side by side with the old until its last request.
void copy_changed_plugins(Generation& g, const Generation* previous, CopyDir& dir) {
    const plugin::Registry probe(g.plugin_dirs);
    std::vector<const config::StrategySpec*> specs;
    for (const auto& s : g.config->router.strategies) specs.push_back(&s);
    for (const auto& s : g.config->router.request_strategies) specs.push_back(&s);
    for (const auto* spec : specs) {
        const auto path = probe.find(spec->name);
        if (!path) continue;  // the registry's own error follows
        const std::string id = file_identity(*path);
        g.plugin_files[*path] = id;
        if (!previous) continue;
        const auto before = previous->plugin_files.find(*path);
        const bool changed = before != previous->plugin_files.end() && before->second != id;
        if (!changed && !previous->copied.count(*path)) continue;
        if (dir.path.empty()) {
            char tmpl[] = "/tmp/tailgate-plugins-XXXXXX";
            if (!::mkdtemp(tmpl)) throw plugin::PluginError("cannot create a directory for a changed plugin");
            dir.path = tmpl;
        }
        std::filesystem::copy_file(*path, dir.path / (spec->name + ".so"),
                                   std::filesystem::copy_options::overwrite_existing);
        g.copied.insert(*path);
    }
    if (!dir.path.empty()) g.plugin_dirs.insert(g.plugin_dirs.begin(), dir.path.string());
}

}  // namespace

GenerationPtr build_generation(std::shared_ptr<const config::Config> cfg, uint64_t revision,
                               const Generation* previous, const std::set<std::string>& drained,
                               const MetricStores& series, fleet::LinkPtr fleet) {
    auto g = std::make_shared<Generation>();
    g->revision = revision;
    g->config = cfg;
    g->plugin_dirs = plugin::search_path(cfg->router.plugin_paths, std::getenv("TAILGATE_PLUGIN_PATH"));
    CopyDir copies;
    copy_changed_plugins(*g, previous, copies);
    g->registry = std::make_unique<plugin::Registry>(g->plugin_dirs);
    g->router = std::make_unique<router::Router>(cfg, *g->registry, router::Router::Clock{}, series.plugins);
    g->router->set_fleet(std::move(fleet));
    // State carried by deployment identity, before the health listener is set:
    // a cooldown a plugin re-publishes now was counted when it began.
    if (previous) {
        g->router->adopt_state(*previous->router);       // the host's per-deployment state
        g->router->adopt_state_from(*previous->router);  // plugins' own (tg_plugin_adopt_state)
    }
    if (cfg->general.metrics) {
        g->prom = std::make_unique<metrics::Metrics>(*cfg, series.metrics);
        std::vector<std::string> dep_ids;
        std::vector<uint32_t> dep_groups;
        for (uint32_t d = 0; d < cfg->deployments.size(); ++d) {
            dep_ids.push_back(cfg->deployments[d].id);
            dep_groups.push_back(g->prom->group_of(d));
        }
        g->strat = std::make_unique<metrics::StrategyStats>(cfg->model_groups(), std::move(dep_ids),
                                                            std::move(dep_groups));
        g->router->set_health_listener(
            [m = g->prom.get(), st = g->strat.get()](uint32_t d, Health from, Health to, int64_t until) {
                if (m->health_changed(d, from, to, until)) st->cooldown(d, std::chrono::steady_clock::now());
            });
    }
    for (const auto& id : drained)
        if (auto i = g->router->index_of(id)) g->router->set_drained(*i, true);
    return g;
}

}  // namespace tailgate::control
