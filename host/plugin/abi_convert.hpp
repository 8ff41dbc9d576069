// The one place host vocabulary (common/vocabulary.hpp) meets the plugin ABI's
// C types. Conversions are explicit switches both ways: a value the other side
// does not know maps to nothing (std::nullopt), never to a neighbour by cast.
//
//   tg_event e{}; e.type = plugin::to_abi(ev.type);
//   if (auto h = plugin::from_abi<Health>(published)) state.health = *h;
#pragma once

#include "common/vocabulary.hpp"

#include <tailgate/plugin_abi.h>

#include <cstdint>
#include <optional>

namespace tailgate::plugin {

tg_endpoint to_abi(Endpoint e);
tg_launch to_abi(Launch l);
tg_event_type to_abi(EventType t);
tg_error_class to_abi(ErrorClass c);
tg_cancel_reason to_abi(CancelReason r);
tg_health to_abi(Health h);
tg_latency_summary to_abi(const LatencySummary& s);
tg_deployment_stats to_abi(const DeploymentStats& s);

// ABI enum members are uint32_t in the structs, so this takes the raw value.
template <class T>
std::optional<T> from_abi(uint32_t raw);
template <> std::optional<Endpoint> from_abi<Endpoint>(uint32_t raw);
template <> std::optional<Launch> from_abi<Launch>(uint32_t raw);
template <> std::optional<EventType> from_abi<EventType>(uint32_t raw);
template <> std::optional<ErrorClass> from_abi<ErrorClass>(uint32_t raw);
template <> std::optional<CancelReason> from_abi<CancelReason>(uint32_t raw);
template <> std::optional<Health> from_abi<Health>(uint32_t raw);

LatencySummary from_abi(const tg_latency_summary& s);

}  // namespace tailgate::plugin
