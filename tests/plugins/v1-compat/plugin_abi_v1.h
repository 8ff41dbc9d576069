/* FROZEN COPY of sdk/include/tailgate/plugin_abi.h as of ABI version 1 before issue 17
 * (commit d9a2e25). Used only by tests/plugins/v1-compat; never edit it. */
/*
 * Tailgate strategy plugin ABI — pure C, stable, versioned.
 *
 * A strategy plugin is a shared object exporting the six required tg_plugin_*
 * symbols declared at the end of this file (tg_plugin_admit is optional). The host resolves all of them and checks
 * tg_plugin_abi_version() == TG_ABI_VERSION before calling tg_plugin_create().
 *
 * Rules of the boundary
 *  - No C++ exception and no STL object crosses it; every function is callable
 *    from C. Use <tailgate/plugin.hpp> for a C++ class with noexcept trampolines.
 *  - Every struct starts with `struct_size` (bytes, filled by whoever allocates
 *    it). Members are only ever appended; read a member only when
 *    struct_size says it is present (TG_HAS_MEMBER).
 *  - OWNERSHIP is stated on every pointer:
 *      BORROWED: owned by the caller, valid only for the duration of the call.
 *      STATIC:   valid for as long as the plugin library is loaded.
 *      HOST:     owned by the host, valid until tg_plugin_destroy returns.
 *  - Threading: route() and observe() are called concurrently from several
 *    host threads for the same instance; plugins synchronise their own state.
 *    Neither may block (no I/O, no sleeping): they run on the request path.
 */
#ifndef TAILGATE_PLUGIN_ABI_H
#define TAILGATE_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_ABI_VERSION 1u

/* Largest plan the executor runs for one model group. */
#define TG_MAX_ATTEMPTS 16u

#define TG_HAS_MEMBER(ptr, type, member) \
    ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

/* ---- status codes returned by plugin entry points ---- */
typedef enum tg_status {
    TG_OK = 0,
    TG_ERR_INVALID_ARGS = 1, /* bad configuration args (create) */
    TG_ERR_INTERNAL = 2,     /* plugin bug / exception caught by a trampoline */
    TG_ERR_NO_CANDIDATE = 3  /* route(): refuse the request (e.g. all cooling) */
} tg_status;

typedef enum tg_log_level {
    TG_LOG_DEBUG = 0,
    TG_LOG_INFO = 1,
    TG_LOG_WARN = 2,
    TG_LOG_ERROR = 3
} tg_log_level;

/* ---- configuration args: the YAML `args:` map of a chain entry, flattened ----
 * Scalars keep their text ("500ms", "0.1", "true"); nested maps use dotted keys
 * ("budget.max_extra_load"); sequences are given as JSON array text.
 * After the entry's own args the host appends the router-level settings under
 * the prefix "router." (router.allowed_fails, router.cooldown_time ("5000ms"),
 * router.disable_cooldowns, router.num_retries, router.timeout,
 * router.allowed_fails_policy.<Key>). Plugins must accept unknown router.* keys. */
typedef struct tg_kv {
    const char* key;   /* BORROWED */
    const char* value; /* BORROWED */
} tg_kv;

typedef struct tg_args {
    uint32_t struct_size;
    const tg_kv* items; /* BORROWED, `count` entries */
    uint32_t count;
} tg_args;

/* ---- deployments (static per config) ---- */
typedef struct tg_deployment {
    uint32_t struct_size;
    uint32_t index;             /* stable index of this deployment in the router */
    const char* id;             /* HOST: model_info.id */
    const char* model_group;    /* HOST: model_name */
    const char* provider;       /* HOST: "openai", "azure", "groq", ... */
    const char* upstream_model; /* HOST: model name sent upstream */
    const char* api_base;       /* HOST: origin + path prefix (no credentials) */
    double weight;              /* 0 when unset */
    int64_t rpm;                /* 0 when unset */
    int64_t tpm;                /* 0 when unset */
    double input_cost_per_token;  /* < 0 when unknown */
    double output_cost_per_token; /* < 0 when unknown */
} tg_deployment;

/* Health states published by a health plugin (default HEALTHY). */
typedef enum tg_health {
    TG_HEALTH_HEALTHY = 0,
    TG_HEALTH_COOLING = 1,
    TG_HEALTH_HALF_OPEN = 2
} tg_health;

/* Latency summary of one deployment for one metric, in milliseconds.
 * samples == 0 means "no data": the other members are then 0. */
typedef struct tg_latency_summary {
    uint64_t samples;
    double mean_ms;
    double p50_ms;
    double p90_ms;
    double p95_ms;
    double p99_ms;
} tg_latency_summary;

/* Live view of a deployment, maintained by the host. Counters are kept by the
 * host itself; latency and health are what plugins published through
 * tg_host_api (e.g. the latency plugin publishes summaries for the hedge
 * plugin to read). A snapshot: values may be slightly stale. */
typedef struct tg_deployment_stats {
    uint32_t struct_size;
    uint32_t in_flight;        /* attempts currently running */
    uint64_t attempts;         /* attempts started, ever */
    uint64_t successes;
    uint64_t failures;         /* failed attempts (cancelled ones excluded) */
    uint32_t health;           /* tg_health */
    int64_t cooldown_until_ms; /* host clock; 0 when not cooling */
    tg_latency_summary ttft;   /* time to first content byte (streams) */
    tg_latency_summary total;  /* total latency (non-stream) */
} tg_deployment_stats;

/* ---- the request being routed ---- */
typedef enum tg_endpoint {
    TG_ENDPOINT_CHAT = 0,
    TG_ENDPOINT_COMPLETIONS = 1,
    TG_ENDPOINT_EMBEDDINGS = 2
} tg_endpoint;

typedef struct tg_request {
    uint32_t struct_size;
    const char* request_id;  /* BORROWED */
    const char* model_group; /* BORROWED: the group being routed */
    uint32_t endpoint;       /* tg_endpoint */
    int32_t stream;          /* 1 for stream=true */
    /* Gateway-only fields the client sent in the body (fastest_response,
     * num_retries, timeout, hedge, ...), as JSON object text; "{}" if none. */
    const char* overrides_json; /* BORROWED */
    const char* metadata_json;  /* BORROWED: extra_body.metadata or "{}" */
    int64_t now_ms;             /* host clock at routing time */
    /* The same gateway-only fields flattened like tg_args ("hedge.delay" = "p99",
     * "fastest_response" = "true", lists as JSON text). BORROWED, `override_count` entries. */
    const tg_kv* overrides;
    uint32_t override_count;
} tg_request;

/* ---- the plan a chain produces ----
 * Launch rules, applied by the host's executor:
 *  AT_START     launch at t=0 together with attempt 0 (racing).
 *  AFTER_DELAY  launch `delay_ms` after the previous attempt launched, unless an
 *               attempt has committed; launched at once if every running
 *               attempt has failed with a retryable error (hedging).
 *  ON_FAILURE   launch when no attempt is running and the last one failed with
 *               a retryable error, after a backoff of `delay_ms` (retry/fallback).
 * The first attempt to commit (first content byte of a stream, complete
 * success otherwise) wins; every other attempt is cancelled and its upstream
 * connection closed. Attempt 0's rule is ignored: it always launches at t=0. */
typedef enum tg_launch {
    TG_LAUNCH_AT_START = 0,
    TG_LAUNCH_AFTER_DELAY = 1,
    TG_LAUNCH_ON_FAILURE = 2
} tg_launch;

typedef struct tg_attempt {
    uint32_t candidate; /* position in tg_route.candidates (final order) */
    uint32_t launch;    /* tg_launch */
    uint32_t delay_ms;
    uint32_t reserved;  /* 0 */
} tg_attempt;

typedef struct tg_candidate {
    const tg_deployment* deployment;  /* HOST */
    const tg_deployment_stats* stats; /* BORROWED */
} tg_candidate;

/* Mutable routing state passed along the chain, strategy by strategy.
 * A strategy may reorder `candidates` in place and lower `count` (filter), and
 * may write `attempts`/`attempt_count`. When the chain leaves attempt_count at
 * 0, the host plans: candidate 0 at start, then ON_FAILURE retries over the
 * following candidates, up to 1 + num_retries attempts. */
typedef struct tg_route {
    uint32_t struct_size;
    tg_candidate* candidates; /* BORROWED, `count` valid entries */
    uint32_t count;
    tg_attempt* attempts;     /* BORROWED, capacity TG_MAX_ATTEMPTS */
    uint32_t attempt_count;
    /* Identifies the request to the host's route callbacks (route_note,
     * route_retry_after); plugins neither read nor change it. */
    void* host_private;       /* HOST: opaque, pass back to host callbacks */
} tg_route;

/* ---- outcome events, delivered to every plugin of the router ---- */
typedef enum tg_event_type {
    TG_EVENT_STARTED = 0,    /* attempt launched */
    TG_EVENT_FIRST_BYTE = 1, /* first content byte (streams) */
    TG_EVENT_SUCCESS = 2,    /* completed successfully */
    TG_EVENT_FAILURE = 3,    /* failed; see error_class / http_status */
    TG_EVENT_CANCELLED = 4,  /* cancelled by the host (lost a race, client left) */
    TG_EVENT_REFUSED = 5,    /* a delayed (hedge) attempt was not launched: admit() said no */
    /* A primary that lost but was kept running as a shadow sample (shadow_sample_rate)
     * finished: elapsed_ms / ttft_ms are its true latency. Nothing of it reached the client. */
    TG_EVENT_SHADOW_DONE = 6
} tg_event_type;

typedef enum tg_error_class {
    TG_ERRC_NONE = 0,
    TG_ERRC_CONNECT = 1,       /* DNS / TCP / TLS failure */
    TG_ERRC_TIMEOUT = 2,       /* connect, first-byte or total timeout */
    TG_ERRC_RATE_LIMIT = 3,    /* 429 */
    TG_ERRC_SERVER = 4,        /* 5xx */
    TG_ERRC_AUTH = 5,          /* 401 / 403 from the upstream */
    TG_ERRC_NOT_FOUND = 6,     /* 404 from the upstream */
    TG_ERRC_BAD_REQUEST = 7,   /* other 4xx: the client's fault, never retried */
    TG_ERRC_PROTOCOL = 8,      /* unparseable upstream response */
    TG_ERRC_CONTEXT_WINDOW = 9 /* upstream says the prompt is too long */
} tg_error_class;

/* Why an attempt was cancelled. A LOST attempt was still running when another
 * committed: its true latency is at least elapsed_ms (a censored sample). */
typedef enum tg_cancel_reason {
    TG_CANCEL_NONE = 0,
    TG_CANCEL_LOST = 1,        /* another attempt of the request won */
    TG_CANCEL_CLIENT_GONE = 2  /* the client disconnected */
} tg_cancel_reason;

typedef struct tg_event {
    uint32_t struct_size;
    uint32_t type;                   /* tg_event_type */
    const tg_deployment* deployment; /* HOST */
    const char* request_id;          /* BORROWED */
    const char* model_group;         /* BORROWED */
    int32_t stream;
    uint32_t attempt;                /* index of the attempt in its plan */
    int64_t at_ms;                   /* host clock when it happened */
    double elapsed_ms;               /* since this attempt launched */
    double ttft_ms;                  /* < 0 when not applicable / unknown */
    uint32_t error_class;            /* tg_error_class, FAILURE only */
    int32_t http_status;             /* upstream status, 0 if none */
    int64_t retry_after_ms;          /* from Retry-After / retry-after-ms, -1 if none */
    int64_t prompt_tokens;           /* -1 when unknown */
    int64_t completion_tokens;       /* -1 when unknown */
    uint32_t cancel_reason;          /* tg_cancel_reason, CANCELLED only */
} tg_event;

/* ---- services the host offers a plugin ---- */
typedef struct tg_host_api {
    uint32_t struct_size;
    void* host; /* HOST: pass as first argument below */
    /* msg: BORROWED */
    void (*log)(void* host, uint32_t level, const char* msg);
    /* Monotonic milliseconds; tests inject a fake clock here. */
    int64_t (*now_ms)(void* host);
    /* Publish a latency summary for deployment `index`; which: 0 = ttft, 1 = total. */
    void (*publish_latency)(void* host, uint32_t index, uint32_t which,
                            const tg_latency_summary* summary /* BORROWED */);
    /* Publish health state; cooldown_until_ms 0 when healthy. */
    void (*publish_health)(void* host, uint32_t index, uint32_t health,
                           int64_t cooldown_until_ms);
    /* Append a short, human-readable note of the decision to this request's log
     * line, e.g. "hedge after 412ms (p95)". route: BORROWED, text: BORROWED */
    void (*route_note)(tg_route* route, const char* text);
    /* Number of deployments in the router and a view of each (HOST-owned). */
    uint32_t (*deployment_count)(void* host);
    const tg_deployment* (*deployment_at)(void* host, uint32_t index);
    /* Appended (older hosts lack it: check TG_HAS_MEMBER, or use the SDK's Host).
     * A route() that refuses (TG_ERR_NO_CANDIDATE) or filters out candidates
     * because of a limit that lifts by itself (e.g. an rpm window) says here in
     * how many ms a retry can succeed. If the request is then refused, the
     * client's Retry-After is the smallest hint reported while routing it, or
     * the soonest end of a cooldown if that is sooner. ms < 0 is ignored.
     * route: BORROWED */
    void (*route_retry_after)(tg_route* route, int64_t ms);
} tg_host_api;

/* ---- symbols every plugin exports ---- */
#if defined(_WIN32)
#define TG_EXPORT __declspec(dllexport)
#else
#define TG_EXPORT __attribute__((visibility("default")))
#endif

/* Returns TG_ABI_VERSION as compiled into the plugin. */
typedef uint32_t (*tg_plugin_abi_version_fn)(void);
/* Returns the strategy name used in config (STATIC). */
typedef const char* (*tg_plugin_name_fn)(void);
/* Builds one instance for one chain entry. host and args are BORROWED except
 * host->host which stays valid until destroy. On failure returns NULL and
 * writes a NUL-terminated message into err (err_len bytes, BORROWED). */
typedef void* (*tg_plugin_create_fn)(const tg_host_api* host, const tg_args* args,
                                     char* err, size_t err_len);
typedef void (*tg_plugin_destroy_fn)(void* instance);
/* Filters/reorders candidates and may shape the plan. Returns tg_status. */
typedef int32_t (*tg_plugin_route_fn)(void* instance, const tg_request* request,
                                      tg_route* route);
/* Observes an attempt outcome. Must not block. */
typedef void (*tg_plugin_observe_fn)(void* instance, const tg_event* event);

/* OPTIONAL export. Asked right before the host launches an AFTER_DELAY attempt
 * (a hedge) that this instance planned, when its delay expired with the earlier
 * attempts still running. Return 1 to launch it, 0 to refuse (a load budget is
 * spent): the request then proceeds without further hedges and observers get
 * TG_EVENT_REFUSED. `event` describes the attempt that would start (type
 * TG_EVENT_STARTED, elapsed_ms = time since the request's first attempt).
 * Plugins without this symbol are treated as always admitting. Must not block. */
typedef int32_t (*tg_plugin_admit_fn)(void* instance, const tg_event* event);

#define TG_SYM_ABI_VERSION "tg_plugin_abi_version"
#define TG_SYM_NAME "tg_plugin_name"
#define TG_SYM_CREATE "tg_plugin_create"
#define TG_SYM_DESTROY "tg_plugin_destroy"
#define TG_SYM_ROUTE "tg_plugin_route"
#define TG_SYM_OBSERVE "tg_plugin_observe"
#define TG_SYM_ADMIT "tg_plugin_admit" /* optional */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TAILGATE_PLUGIN_ABI_H */
