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
 *  - Threading: route(), observe(), admit() and release_request() are called
 *    concurrently from several host threads for the same instance; plugins
 *    synchronise their own state. None may block (no I/O, no sleeping): they
 *    run on the request path. create() and destroy() are never concurrent
 *    with any other call on the same instance; adopt_state() never with any
 *    other call on the new instance (the previous one may still be serving).
 *  - Growth: TG_ABI_VERSION stays 1 while the ABI only grows. A plugin built
 *    against an older copy of this header keeps loading: the host fills every
 *    member it knows and the plugin reads only those it knows; a plugin built
 *    against a newer copy checks TG_HAS_MEMBER before reading an appended
 *    member (the SDK's C++ wrapper does this for you).
 *
 * The host does not trust what a plugin writes (see tg_route): every output is
 * checked against what the host handed in, and a route() that breaks a rule
 * counts as a failure of that plugin — its whole decision is undone and the
 * request continues with the rest of the chain.
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
    uint32_t index;             /* position in this router; changes when deployments are added or removed */
    /* HOST: the deployment's identity, unique in the router and stable across
     * reloads: model_info.id, else a hash of model group, upstream model and
     * api_base. Key state that should survive a reload by this, never by index. */
    const char* id;
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
/* Endpoint kinds. New kinds are appended as the gateway serves more endpoints:
 * treat a value you do not know as "some other endpoint", never as an error. */
typedef enum tg_endpoint {
    TG_ENDPOINT_CHAT = 0,
    TG_ENDPOINT_COMPLETIONS = 1,
    TG_ENDPOINT_EMBEDDINGS = 2,
    TG_ENDPOINT_RESPONSES = 3, /* OpenAI's Responses API (/v1/responses) */
    TG_ENDPOINT_MESSAGES = 4,  /* Anthropic's Messages API (/v1/messages) */
    /* appended with OpenAI's pass-through endpoints */
    TG_ENDPOINT_MODERATIONS = 5,          /* /v1/moderations */
    TG_ENDPOINT_IMAGE_GENERATIONS = 6,    /* /v1/images/generations */
    TG_ENDPOINT_AUDIO_SPEECH = 7,         /* /v1/audio/speech (binary audio, stream = 1) */
    TG_ENDPOINT_AUDIO_TRANSCRIPTIONS = 8, /* /v1/audio/transcriptions (multipart) */
    TG_ENDPOINT_AUDIO_TRANSLATIONS = 9,   /* /v1/audio/translations (multipart) */
    TG_ENDPOINT_IMAGE_EDITS = 10,         /* /v1/images/edits (multipart) */
    TG_ENDPOINT_IMAGE_VARIATIONS = 11     /* /v1/images/variations (multipart) */
} tg_endpoint;

/* tg_request.flags */
#define TG_REQUEST_HAS_TOOLS 0x1u           /* `tools` (or legacy `functions`) present */
#define TG_REQUEST_HAS_RESPONSE_FORMAT 0x2u /* `response_format` present */
/* (1.2) A dry run: POST /admin/routing/preview and GET /admin/routing/state ask
 * what the chain would plan; nothing is sent and no event follows. Plan as
 * usual but change no state: reserve no probe, count no request, spend no budget. */
#define TG_REQUEST_PREVIEW 0x4u

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
    /* ---- appended in 1.1 (TG_HAS_MEMBER) ---- */
    const char* user;               /* BORROWED: OpenAI `user`; NULL when absent or not a string */
    int64_t max_tokens;             /* `max_completion_tokens`, else `max_tokens`; -1 when absent */
    uint32_t flags;                 /* TG_REQUEST_HAS_* */
    /* Rough prompt size: bytes of messages/prompt/input divided by 4; -1 when unknown. */
    int64_t prompt_tokens_estimate;
    /* Request headers named in router_settings.strategy_request_headers, names
     * lower-case, in the order received. BORROWED, `header_count` entries. */
    const tg_kv* headers;
    uint32_t header_count;
    /* Who is calling. caller_key_hash: the first 16 hex digits of the SHA-256 of
     * the API key the client presented (never the key itself), NULL when the
     * gateway runs without keys. caller_key_alias / caller_team: reserved for
     * virtual keys, NULL until those exist. All BORROWED. */
    const char* caller_key_hash;
    const char* caller_key_alias;
    const char* caller_team;
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
 * connection closed. Attempt 0's rule is ignored: it always launches at t=0.
 * A launch value other than these three is not
 * guessed at: the host refuses the plan and treats the route() as failed. */
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
 * following candidates, up to 1 + num_retries attempts.
 *
 * What the host checks after every route() that returns TG_OK (a violation is
 * logged with its reason and handled like TG_ERR_INTERNAL):
 *  - `candidates`, `attempts` and `host_private` still hold the host's pointers
 *    (reorder in place; never point them at memory of your own);
 *  - `count` is not larger than before the call;
 *  - every entry in candidates[0..count) is one of the entries the host handed
 *    in (same deployment and stats pointers, as a pair), each at most once: no
 *    NULL, no copy of a tg_deployment, no deployment of another model group;
 *  - attempt_count <= TG_MAX_ATTEMPTS and each attempt names a position
 *    < count with a known launch rule.
 * On any status other than TG_OK and TG_ERR_NO_CANDIDATE (and on a violation)
 * the host restores the whole route as it was before the call — candidates,
 * count, every attempt and attempt_count — and goes on with the next strategy,
 * as if this one had not run. */
typedef struct tg_route {
    uint32_t struct_size;
    tg_candidate* candidates; /* BORROWED, `count` valid entries */
    uint32_t count;
    tg_attempt* attempts;     /* BORROWED, capacity TG_MAX_ATTEMPTS */
    uint32_t attempt_count;
    /* Identifies the request to the host's route callbacks (route_note,
     * route_retry_after); plugins neither read nor change it. */
    void* host_private;       /* HOST: opaque, pass back to host callbacks */
    /* ---- appended in 1.1 (TG_HAS_MEMBER) ---- */
    /* This instance's context for this request: NULL on its first route() of a
     * request, else what it left here on its previous route() of the same
     * request (a request routes its fallback groups too). Whatever the plugin
     * leaves here (also when it fails) comes back in tg_event.request_ctx for
     * this request's events, and is handed to tg_plugin_release_request exactly
     * once after the request's last event. Leaving a different pointer on a
     * later route() of the same request makes the host release the earlier one
     * at once (never free it yourself). Owned by the plugin. */
    void* request_ctx;
    /* A route() that fails may write a NUL-terminated reason here (at most
     * error_size bytes, including the NUL); the host logs it. BORROWED. */
    char* error;
    uint32_t error_size;
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
    /* ---- appended in 1.1 (TG_HAS_MEMBER) ---- */
    /* What the receiving instance left in tg_route.request_ctx while routing
     * this request; NULL when it set none (or did not route it). */
    void* request_ctx;
    /* ---- appended in 1.2 (TG_HAS_MEMBER) ---- */
    uint32_t flags;   /* TG_EVENT_FLAG_* */
    uint32_t launch;  /* tg_launch of the attempt in its plan (AT_START for attempt 0) */
    /* TG_EVENT_FLAG_REMOTE only: the replica that saw it (shared_state.replica_id).
     * BORROWED. NULL for this process's own events. */
    const char* replica;
} tg_event;

/* tg_event.flags (1.2) */
/* The outcome of an attempt another replica of the fleet ran (shared state
 * through Redis), delivered only through tg_plugin_observe_remote, within about
 * one sync interval (100 ms by default) of when it happened. Such events have
 * no request_ctx and an empty request_id; at_ms is on this host's clock. */
#define TG_EVENT_FLAG_REMOTE 0x1u

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
    /* ---- appended in 1.1 (TG_HAS_MEMBER) ---- */
    /* Non-zero when a message at `level` would be written (skip building
     * expensive debug text otherwise). */
    int32_t (*log_enabled)(void* host, uint32_t level);
    /* Plugin metrics, rendered in /metrics as tailgate_plugin_<strategy>_<name>
     * (strategy and name with every character outside [a-zA-Z0-9_] as '_').
     * Register while being created (in tg_plugin_create); the host refuses
     * later registrations, more than TG_MAX_PLUGIN_METRICS per instance, names
     * registered twice, and more than TG_MAX_PLUGIN_LABEL_VALUES values.
     * Labels are bounded by construction: at most one label, whose every value
     * is given here (label_name NULL and value_count 0 for none). Histogram
     * buckets are upper bounds in ascending order (NULL: the host's default,
     * 1ms..60s in ms). Returns the metric's id (>= 0) or -1 when refused (the
     * host logs why). name, help, label_name, label_values, buckets: BORROWED. */
    int32_t (*metric_register)(void* host, uint32_t kind, const char* name, const char* help,
                               const char* label_name, const char* const* label_values, uint32_t value_count,
                               const double* buckets, uint32_t bucket_count);
    /* counter: adds value (>= 0); gauge: sets it; histogram: observes it.
     * label_index: position in the registered label_values (0 without label).
     * An unknown id or index is ignored. Lock-free: fine on the request path. */
    void (*metric_update)(void* host, int32_t metric, uint32_t label_index, double value);
    /* ---- appended in 1.2 (TG_HAS_MEMBER) ---- */
    /* Fleets (replicas sharing state through Redis): may this replica send the
     * half-open probe of deployment `index` now? Returns 1 when this replica
     * holds the fleet's probe lease for it (or runs alone, or Redis is
     * unreachable), 0 when another replica holds it or it is not granted yet
     * (the host asks for it in the background: ask again on a later request).
     * A health strategy asks before reserving a probe; the lease goes back when
     * it publishes the deployment HEALTHY or COOLING. Never blocks. */
    int32_t (*probe_lease)(void* host, uint32_t index);
    /* ---- appended in 1.3 (TG_HAS_MEMBER) ---- */
    /* Fleet-wide rpm/tpm (quota leases): the host keeps, per deployment with an
     * rpm (kind TG_QUOTA_REQUESTS) or tpm (TG_QUOTA_TOKENS), a small allowance
     * granted by Redis and refilled in the background; these answer from it at
     * once and never block. quota_take takes `amount` units (0: only asks
     * whether any is left) and returns:
     *   TG_QUOTA_GRANTED    taken (for 0: some is left);
     *   TG_QUOTA_EXHAUSTED  none left: the deployment is at the fleet's limit;
     *                       *retry_after_ms (if not NULL) gets the ms until a
     *                       unit may free, or -1 when unknown;
     *   TG_QUOTA_LOCAL      no fleet answer now (Redis unreachable, or not
     *                       heard from yet): count this replica's own usage;
     *   TG_QUOTA_NONE       no fleet quota for it (the process runs alone, or
     *                       the deployment has no such limit): count locally,
     *                       and never call quota_settle for it.
     * quota_settle reports, for a deployment answered GRANTED/EXHAUSTED/LOCAL:
     * amount > 0 units used that were not taken (tokens after the response, an
     * attempt started without a reservation: the host tells Redis); amount < 0
     * units taken that were not used (a reservation whose attempt never
     * started: back into the allowance). Hosts before 1.3 lack both: count
     * locally. */
    int32_t (*quota_take)(void* host, uint32_t index, uint32_t kind, int64_t amount, int64_t* retry_after_ms);
    void (*quota_settle)(void* host, uint32_t index, uint32_t kind, int64_t amount);
} tg_host_api;

/* tg_host_api.quota_take kinds and answers (1.3) */
#define TG_QUOTA_REQUESTS 0u
#define TG_QUOTA_TOKENS 1u
#define TG_QUOTA_NONE (-2)
#define TG_QUOTA_LOCAL (-1)
#define TG_QUOTA_EXHAUSTED 0
#define TG_QUOTA_GRANTED 1

/* tg_host_api.metric_register kinds */
typedef enum tg_metric_kind {
    TG_METRIC_COUNTER = 0,
    TG_METRIC_GAUGE = 1,
    TG_METRIC_HISTOGRAM = 2
} tg_metric_kind;

#define TG_MAX_PLUGIN_METRICS 32u
#define TG_MAX_PLUGIN_LABEL_VALUES 64u
#define TG_MAX_PLUGIN_BUCKETS 32u

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

/* OPTIONAL export (1.1). Called once per request for which this instance left
 * a non-NULL tg_route.request_ctx, after the last event of that request was
 * delivered (or when the request ended without any attempt). Frees it. */
typedef void (*tg_plugin_release_request_fn)(void* instance, void* request_ctx);

/* OPTIONAL export (1.1). State handover on a reload: the host built `instance`
 * from the new configuration and, before the first route() of `instance`, asks
 * it to take over what it can of `previous` (latency windows, counters...),
 * matching deployments by tg_deployment.id (indices differ between the two).
 * The host asks only when `previous` was created by the same loaded library
 * (same strategy name, same file), so its layout is the plugin's own; the
 * configuration (args) may differ. `previous` is still in service while this
 * runs and afterwards: it routes until the new configuration is published and
 * observes the events of the requests that started on it until they end. So
 * share state objects that synchronise themselves (the SDK's
 * <tailgate/deployment_table.hpp> does this per deployment) rather than moving
 * unguarded members out. Return TG_OK, or an error to start fresh (the host
 * logs it and goes on). `previous` is destroyed after its last request. */
typedef int32_t (*tg_plugin_adopt_state_fn)(void* instance, void* previous);

/* OPTIONAL export (1.2). What GET /admin/routing/state shows of this instance:
 * writes a JSON object describing its live state (NUL-terminated, at most
 * `size` bytes including the NUL) and returns the length of the whole text
 * without the NUL; when that is >= size the host asks again with a larger
 * buffer (up to 64 KiB). Return < 0 for nothing to show. The host checks that
 * the text is a JSON object and shows it under the strategy's name; a member
 * "budget_left" (a number: hedges or extra attempts still allowed now) is also
 * shown as the routing state's budget left. Called from an admin thread,
 * concurrently with route() and observe(): synchronise as for those. Must not block. */
typedef int32_t (*tg_plugin_state_json_fn)(void* instance, char* out, uint32_t size);
/* OPTIONAL export (1.2). Outcomes of attempts other replicas of the fleet ran
 * (TG_EVENT_FLAG_REMOTE set), so that latency windows, failure counters, load
 * budgets and usage windows cover the fleet. Only plugins exporting it see
 * them; tg_plugin_observe never does. Called from the host's synchroniser
 * thread, concurrently with the other calls. Must not block. */
typedef void (*tg_plugin_observe_remote_fn)(void* instance, const tg_event* event);

#define TG_SYM_ABI_VERSION "tg_plugin_abi_version"
#define TG_SYM_NAME "tg_plugin_name"
#define TG_SYM_CREATE "tg_plugin_create"
#define TG_SYM_DESTROY "tg_plugin_destroy"
#define TG_SYM_ROUTE "tg_plugin_route"
#define TG_SYM_OBSERVE "tg_plugin_observe"
#define TG_SYM_ADMIT "tg_plugin_admit" /* optional */
#define TG_SYM_RELEASE_REQUEST "tg_plugin_release_request" /* optional, 1.1 */
#define TG_SYM_ADOPT_STATE "tg_plugin_adopt_state"         /* optional, 1.1 */
#define TG_SYM_STATE_JSON "tg_plugin_state_json"           /* optional, 1.2 */
#define TG_SYM_OBSERVE_REMOTE "tg_plugin_observe_remote"   /* optional, 1.2 */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TAILGATE_PLUGIN_ABI_H */
