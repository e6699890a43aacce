/*
 * llm_gateway.h — types and entry points shared by the llm_gateway sources.
 *
 * One call of llm_complete() flows through these structures:
 *
 *   LgRequest     the validated arguments (request.c)
 *   LgTenant      the tenant it runs for, after the membership check (catalog.c)
 *   LgDeployment  the provider deployment chosen for the model (catalog.c)
 *   LgHttpRequest / LgHttpResponse   one HTTP exchange (provider*.c, http.c)
 *   LgReply       what the provider answered, normalised (provider*.c)
 *   LgAttempt     the outcome of one try, as written to the ledger (ledger.c)
 *
 * Money is kept in integers: prices in micro-USD per million tokens, costs in
 * pico-USD (1e-12 USD), so that tokens × price is exact.
 */
#ifndef LG_LLM_GATEWAY_H
#define LG_LLM_GATEWAY_H

#include "pg_prelude.h"

#define LG_SCHEMA     "llm_gateway"
#define LG_ADMIN_ROLE "llm_gateway_admin"

/*
 * SQLSTATEs of the gateway's own refusals: class LG (implementation-defined
 * classes start with I-Z).  The README documents every one of them.
 */
#define ERRCODE_LG_TENANT_NOT_FOUND      MAKE_SQLSTATE('L', 'G', '0', '0', '1')
#define ERRCODE_LG_MODEL_NOT_FOUND       MAKE_SQLSTATE('L', 'G', '0', '0', '2')
#define ERRCODE_LG_PROVIDER_NOT_FOUND    MAKE_SQLSTATE('L', 'G', '0', '0', '3')
#define ERRCODE_LG_TENANT_INACTIVE       MAKE_SQLSTATE('L', 'G', '0', '0', '4')
#define ERRCODE_LG_MODEL_NOT_ALLOWED     MAKE_SQLSTATE('L', 'G', '0', '0', '5')
#define ERRCODE_LG_GATEWAY_DISABLED      MAKE_SQLSTATE('L', 'G', '0', '0', '6')
#define ERRCODE_LG_NO_DEPLOYMENT         MAKE_SQLSTATE('L', 'G', '0', '0', '7')
#define ERRCODE_LG_INVALID_MESSAGES      MAKE_SQLSTATE('L', 'G', '0', '1', '0')
#define ERRCODE_LG_INVALID_OPTIONS       MAKE_SQLSTATE('L', 'G', '0', '1', '1')
#define ERRCODE_LG_INVALID_CONFIG        MAKE_SQLSTATE('L', 'G', '0', '1', '2')
#define ERRCODE_LG_PROVIDER_ERROR        MAKE_SQLSTATE('L', 'G', '0', '2', '0')
#define ERRCODE_LG_PROVIDER_RATE_LIMITED MAKE_SQLSTATE('L', 'G', '0', '2', '1')
#define ERRCODE_LG_PROVIDER_AUTH         MAKE_SQLSTATE('L', 'G', '0', '2', '2')
#define ERRCODE_LG_PROVIDER_REJECTED     MAKE_SQLSTATE('L', 'G', '0', '2', '3')
#define ERRCODE_LG_PROVIDER_UNAVAILABLE  MAKE_SQLSTATE('L', 'G', '0', '2', '4')
#define ERRCODE_LG_PROVIDER_TIMEOUT      MAKE_SQLSTATE('L', 'G', '0', '2', '5')
#define ERRCODE_LG_PROVIDER_CONNECT      MAKE_SQLSTATE('L', 'G', '0', '2', '6')
#define ERRCODE_LG_RESPONSE_TOO_LARGE    MAKE_SQLSTATE('L', 'G', '0', '2', '7')
#define ERRCODE_LG_RESPONSE_MALFORMED    MAKE_SQLSTATE('L', 'G', '0', '2', '8')
#define ERRCODE_LG_ALL_PROVIDERS_FAILED  MAKE_SQLSTATE('L', 'G', '0', '3', '0')
#define ERRCODE_LG_NO_PROVIDER_AVAILABLE MAKE_SQLSTATE('L', 'G', '0', '3', '1')
#define ERRCODE_LG_MASTER_KEY_MISSING    MAKE_SQLSTATE('L', 'G', '0', '5', '0')
#define ERRCODE_LG_SECRET_UNREADABLE     MAKE_SQLSTATE('L', 'G', '0', '5', '1')
#define ERRCODE_LG_KEY_SOURCE            MAKE_SQLSTATE('L', 'G', '0', '5', '2')
#define ERRCODE_LG_URL_REFUSED           MAKE_SQLSTATE('L', 'G', '0', '5', '3')
#define ERRCODE_LG_SPEND_QUEUE_FULL      MAKE_SQLSTATE('L', 'G', '0', '6', '0')
#define ERRCODE_LG_NOT_PRELOADED         MAKE_SQLSTATE('L', 'G', '0', '9', '0')

/* ---- settings (guc.c) ---- */
extern bool  lg_enabled;
extern char *lg_master_key;
extern char *lg_master_key_file;
extern char *lg_previous_master_key;
extern char *lg_previous_master_key_file;
extern char *lg_allowed_http_hosts;
extern int   lg_timeout_ms;
extern int   lg_connect_timeout_ms;
extern int   lg_max_response_kb;
extern int   lg_max_request_kb;
extern char *lg_ca_bundle;

extern void lg_define_settings(void);

/* ---- validated arguments (request.c) ---- */
typedef enum LgRole
{
	LG_ROLE_SYSTEM,
	LG_ROLE_USER,
	LG_ROLE_ASSISTANT
} LgRole;

typedef struct LgMessage
{
	LgRole role;
	char  *content; /* server encoding, NUL-terminated */
} LgMessage;

typedef enum LgCacheMode
{
	LG_CACHE_DEFAULT,
	LG_CACHE_BYPASS,
	LG_CACHE_REFRESH
} LgCacheMode;

/*
 * What the ledger keeps of a call's content (privacy.c), ordered from most
 * to least: a call's own option may only move down the list.
 */
typedef enum LgPrivacy
{
	LG_PRIVACY_TEXT, /* the texts (usage_content) and their digests */
	LG_PRIVACY_HASH, /* SHA-256 digests only */
	LG_PRIVACY_NONE  /* nothing */
} LgPrivacy;

#define LG_PRIVACY_UNSET (-1)

typedef struct LgOptions
{
	char       *temperature; /* numeric text exactly as given, or NULL */
	char       *top_p;       /* numeric text exactly as given, or NULL */
	int32       max_tokens;  /* 0 when absent */
	List       *stop;        /* list of char *, NIL when absent */
	char       *agent;
	char       *channel;
	char       *session_id;
	char       *conversation_id;
	Jsonb      *metadata; /* NULL when absent */
	LgCacheMode cache;
	int32       cache_ttl_s; /* -1 when absent */
	int32       timeout_ms;  /* 0 when absent */
	int         privacy;     /* LgPrivacy, or LG_PRIVACY_UNSET */
	bool        fallback;
	char       *idempotency_key;
} LgOptions;

typedef struct LgRequest
{
	char      *tenant;
	char      *model; /* NULL: the tenant's default model */
	LgMessage *messages;
	int        nmessages;
	size_t     content_bytes; /* total size of all message texts */
	LgOptions  opt;
} LgRequest;

extern void lg_request_parse(LgRequest *req,
							 text      *tenant,
							 text      *model,
							 Jsonb     *messages,
							 Jsonb     *options);
extern bool lg_privacy_parse(const char *s, int len, LgPrivacy *privacy);
extern const char *lg_role_name(LgRole role);
extern bool        lg_role_parse(const char *s, int len, LgRole *role);

/* ---- catalog lookups (catalog.c) ---- */
typedef enum LgProviderKind
{
	LG_KIND_OPENAI,
	LG_KIND_AZURE_OPENAI,
	LG_KIND_ANTHROPIC,
	LG_KIND_GEMINI
} LgProviderKind;

typedef struct LgProvider
{
	char          *name;
	LgProviderKind kind;
	char          *base_url;           /* without trailing slash */
	bytea         *api_key_enc;        /* sealed key; NULL when not stored */
	char          *api_key_env;        /* or: server environment variable */
	char          *api_key_file;       /* or: file holding the key */
	char          *api_version;        /* azure_openai only, may be NULL */
	int32          timeout_ms;         /* 0: the setting's default */
	int32          connect_timeout_ms; /* 0: the setting's default */
	List          *headers;            /* extra "Name: value" strings */
	int32          priority;
	int32          weight;
	int32          rpm;             /* 0: no limit */
	int32          tpm;             /* 0: no limit */
	int32          max_concurrency; /* 0: no limit */
	int32          breaker_failures;
	int32          breaker_cooldown_ms;
	int32          breaker_successes;
	int32          breaker_probes;
} LgProvider;

typedef struct LgPrice
{
	int64 input; /* micro-USD per million tokens */
	int64 output;
	int64 cached_input;
	int64 cache_write;
} LgPrice;

typedef struct LgDeployment
{
	char      *model;             /* registry id, e.g. openai/gpt-4o-mini */
	char      *upstream_model;    /* the provider's name for it */
	int32      max_output_tokens; /* 0 when unknown */
	int32      context_window;    /* 0 when unknown */
	int32      priority;
	int32      weight;
	int        group; /* 0: the route's models; k: its k-th fallback model */
	LgPrice    price;
	LgProvider provider;
} LgDeployment;

typedef enum LgStrategy
{
	LG_STRATEGY_PRIORITY,
	LG_STRATEGY_WEIGHTED,
	LG_STRATEGY_LEAST_BUSY,
	LG_STRATEGY_LOWEST_LATENCY,
	LG_STRATEGY_LOWEST_COST
} LgStrategy;

/*
 * Where a call may go: the usable deployments of the requested model or
 * route, group by group (its models, then each fallback model), in the
 * order the strategy prefers.
 */
typedef struct LgPlan
{
	char      *requested; /* the model id or alias asked for */
	char      *route;     /* the route in force, or NULL */
	LgStrategy strategy;
	int32      retries; /* per deployment, on transient errors */
	char *cache_model;  /* the route's models, canonical, for the cache key */
	LgDeployment *cands;
	int           ncands;
} LgPlan;

typedef enum LgCacheScope
{
	LG_CACHE_SCOPE_TENANT,
	LG_CACHE_SCOPE_SHARED,
	LG_CACHE_SCOPE_OFF
} LgCacheScope;

typedef struct LgTenant
{
	LgCacheScope cache_scope;
	LgPrivacy    privacy;
	char        *tenant;
	char        *currency;
	char        *exchange_rate; /* units of currency per USD, numeric text */
	const char  *rate_source;   /* identity, api, manual, last_known, ... */
	char        *timezone;
	TimestampTz  suspended_until; /* 0: not suspended */
	char        *suspended_reason;
	Oid          caller; /* the role acting for the tenant */
	bool         caller_admin;
} LgTenant;

struct LgLimits;

extern void lg_catalog_resolve(LgRequest       *req,
							   LgTenant        *tenant,
							   LgPlan          *plan,
							   struct LgLimits *limits);
extern void
lg_catalog_replan(LgPlan *plan, const LgRequest *req, const char *model);
extern void        lg_catalog_tenant_limits(const char      *tenant_id,
											LgTenant        *tenant,
											struct LgLimits *limits);
extern bool        lg_caller_is_admin(void);
extern bool        lg_role_is_member(Oid role, List *members);
extern bool        lg_model_allowed(List *allowed, const char *model);
extern void        lg_plan_load(LgPlan          *plan,
								const LgRequest *req,
								List            *allowed,
								MemoryContext    cxt);
extern const char *lg_strategy_name(LgStrategy strategy);

/* Run a block of catalog SQL as the extension owner with a safe search_path. */
typedef struct LgOwnerScope
{
	Oid saved_userid;
	int saved_sec_context;
	int guc_nestlevel;
} LgOwnerScope;

extern void lg_owner_scope_enter(LgOwnerScope *scope);
extern void lg_owner_scope_exit(LgOwnerScope *scope);

/* ---- secrets (crypto.c) ---- */
extern bytea *
lg_secret_encrypt(const char *plain, size_t len, const char *context);
extern char *lg_secret_decrypt(const bytea *sealed,
							   const char  *context,
							   const char  *owner_name);
extern void  lg_secret_free(char *secret);

typedef enum LgSealStatus
{
	LG_SEAL_OK,
	LG_SEAL_BAD_FORMAT,
	LG_SEAL_OTHER_KEY, /* neither the current nor the previous master key */
	LG_SEAL_TAMPERED
} LgSealStatus;

extern LgSealStatus
lg_secret_open(const bytea *sealed, const char *context, char **plain);
extern bool lg_secret_is_current(const bytea *sealed);
struct stat;
extern bool lg_file_is_private(const struct stat *st);

/* ---- where a provider's key comes from (key_source.c) ---- */
extern char *lg_provider_key(const LgProvider *p);

/* ---- secrets kept out of the server log (log_redact.c) ---- */
extern void lg_log_redact_init(void);

/* ---- outbound URLs (url_policy.c) ---- */
extern bool lg_url_is_allowed(const char *url);
extern void lg_url_check(const char *url, const char *what);

/* ---- providers (provider.c, provider_*.c) ---- */
typedef struct LgUsage
{
	int64 input_tokens;       /* every prompt token, cached ones included */
	int64 cached_tokens;      /* of which read from the provider's cache */
	int64 cache_write_tokens; /* of which written to the provider's cache */
	int64 reasoning_tokens;   /* part of output_tokens */
	int64 output_tokens;
} LgUsage;

typedef struct LgReply
{
	char   *content; /* NULL when the model gave no text */
	char   *finish_reason;
	char   *provider_request_id;
	char   *upstream_model;
	LgUsage usage;
	bool    has_usage;
	bool    usage_estimated; /* provider sent no usage: counted by us */
} LgReply;

extern const char *lg_kind_name(LgProviderKind kind);
extern bool        lg_kind_parse(const char *name, LgProviderKind *kind);

/* One try against one deployment, as the ledger records it. */
typedef enum LgAttemptStatus
{
	LG_ATTEMPT_OK,
	LG_ATTEMPT_ERROR,
	LG_ATTEMPT_TIMEOUT
} LgAttemptStatus;

typedef struct LgAttempt
{
	int                 number;
	const LgDeployment *dep;
	LgAttemptStatus     status;
	long                http_status;
	double              latency_ms;
	LgReply             reply;
	int64               cost_picousd;
	/* when status != OK: the error raised to the caller */
	int   sqlstate;
	char *error;
	char *detail;
	char *hint;
	int32 retry_after_ms; /* the provider's retry-after, -1 when absent */
	TimestampTz started_at;
	int64       usage_id;
	/* how the router came to this attempt */
	bool  was_fallback;    /* not the first deployment tried */
	char *fallback_reason; /* why the previous deployment was left */
	bool  cached;          /* answered from the response cache */
	int64 saved_tokens;    /* cache hit: tokens not spent */
	int64 saved_picousd;   /* cache hit: what the call had cost */
} LgAttempt;

/*
 * What the caller of lg_attempt_run wants to know: the moment the request is
 * about to leave (it may cost money from then on), and an error that
 * abandons the exchange (cancel, statement_timeout) with its message.
 */
typedef struct LgAttemptHooks
{
	void (*before_send)(void *arg);
	void (*on_abandon)(void *arg, const char *why);
	void *arg;
} LgAttemptHooks;

extern void        lg_attempt_run(LgAttempt            *attempt,
								  const LgRequest      *req,
								  const LgDeployment   *dep,
								  const LgAttemptHooks *hooks);
extern const char *lg_attempt_status_name(LgAttemptStatus status);

/* ---- money (pricing.c) ---- */
extern int64 lg_cost_picousd(const LgUsage *usage, const LgPrice *price);
extern int64 lg_prompt_estimate(const LgRequest *req);
extern void  lg_append_picousd(StringInfo buf, int64 picousd);

/* ---- one call ---- */
struct LgAccount;

typedef struct LgCall
{
	pg_uuid_t         request_id;
	TimestampTz       started_at;
	const LgRequest  *req;
	const LgTenant   *tenant;
	const char       *requested;       /* model id or alias asked for */
	const char       *downgraded_from; /* a budget sent the call elsewhere */
	struct LgAccount *account;         /* NULL: no quota or budget applies */
	LgPrivacy         privacy;         /* the tenant's, lowered by the call */
	Jsonb            *messages;        /* as passed, for privacy "text" */
	bool              has_prompt_sha256;
	uint8             prompt_sha256[32];
} LgCall;

extern void lg_uuid_generate(pg_uuid_t *uuid);

/* ---- spend that is never lost (spend.c, ledger.c) ---- */

/*
 * One ledger row as it waits in shared memory.  Fixed-size text fields: the
 * arguments that fill them are validated to fit (labels 256 bytes, metadata
 * LG_METADATA_MAX); provider-supplied text is cut to fit.  An empty string
 * stands for NULL.
 */
#define LG_LABEL_MAX    257
#define LG_MODEL_MAX    201
#define LG_ERROR_MAX    1024
#define LG_METADATA_MAX 4096

typedef struct LgSpendEntry
{
	int64       usage_id;
	pg_uuid_t   request_id;
	TimestampTz created_at;
	int32       attempt;
	int32       http_status;
	bool        usage_estimated;
	int64       input_tokens;
	int64       cached_tokens;
	int64       cache_write_tokens;
	int64       reasoning_tokens;
	int64       output_tokens;
	int64       cost_picousd;
	double      latency_ms;
	bool        cached;
	bool        was_fallback;
	bool        over_budget;
	int64       saved_tokens;
	int64       saved_picousd;
	bool        has_prompt_sha256;
	bool        has_response_sha256;
	uint8       prompt_sha256[32];
	uint8       response_sha256[32];
	char        status[12];
	char        error_code[6];
	char        tenant[LG_LABEL_MAX];
	char        agent[LG_LABEL_MAX];
	char        channel[LG_LABEL_MAX];
	char        session_id[LG_LABEL_MAX];
	char        conversation_id[LG_LABEL_MAX];
	char        model[LG_MODEL_MAX];
	char        provider[64];
	char        upstream_model[LG_MODEL_MAX];
	char        requested_model[LG_MODEL_MAX];
	char        fallback_reason[256];
	char        finish_reason[33];
	char        currency[4];
	char        exchange_rate[32];
	char        rate_source[12];
	char        downgraded_from[LG_MODEL_MAX];
	char        provider_request_id[129];
	char        error[LG_ERROR_MAX];
	char        metadata[LG_METADATA_MAX]; /* jsonb as text */
} LgSpendEntry;

/* The caller's claim on the slot of one attempt. */
typedef struct LgSpendHandle
{
	int    slot;
	uint64 generation;
	bool   caller_writes; /* the row also goes into the caller's transaction */
	int64  usage_id;
} LgSpendHandle;

typedef struct LgSpendReport
{
	int written;   /* rows written by this pass */
	int settled;   /* entries whose caller's transaction committed its row */
	int discarded; /* entries of a database without the extension */
	int pending;   /* entries still waiting (callers' transactions open) */
	int failed;    /* rows the ledger refused, back in the queue */
} LgSpendReport;

extern void lg_spend_begin(LgSpendHandle      *h,
						   const LgCall       *call,
						   const LgDeployment *dep,
						   int                 attempt);
extern void lg_spend_interrupted(const LgSpendHandle *h, const char *why);
extern void lg_spend_settle(LgSpendHandle   *h,
							const LgCall    *call,
							const LgAttempt *attempt,
							LgSpendEntry    *entry);
extern void lg_spend_inserted(const LgSpendHandle *h);

/* ---- what the ledger keeps of the content (privacy.c) ---- */
extern void lg_privacy_prepare(LgCall *call, Jsonb *messages);
extern void
lg_privacy_fill(LgSpendEntry *e, const LgCall *call, const LgAttempt *a);
extern void lg_privacy_store(const LgCall *call, const LgAttempt *final);
extern bool lg_spend_flush(LgSpendReport *report, int max_rows);
extern void lg_spend_wait_for_writers(LgSpendReport *report);
extern int  lg_spend_discard(Oid dboid);
extern int  lg_spend_waiting(void);
extern void lg_spend_init_backend(void);
extern int  lg_spend_other_databases(Oid *dboids, int max);
extern bool lg_spend_pending_ids(int64 **ids, int *nids);
extern bool lg_spend_pending_for(const char *tenant);

extern void lg_ledger_insert(const LgSpendEntry *entry, bool by_caller);
extern void lg_ledger_insert_many(const LgSpendEntry *entries, int n);

/* ---- routing (router.c) ---- */
typedef struct LgSkip
{
	const LgDeployment *dep;
	char               *reason;
} LgSkip;

typedef struct LgRouteResult
{
	LgAttempt *attempts; /* every attempt that sent a request */
	int        nattempts;
	LgAttempt *final;          /* the successful one, or NULL */
	LgAttempt *last_failure;   /* the last failed one */
	bool       stopped;        /* a failure that must not fall back */
	bool       budget_refused; /* a budget had no room for an attempt */
	LgSkip    *skipped;        /* candidates not tried, and why */
	int        nskipped;
	int        skipped_cap;
} LgRouteResult;

extern void
lg_router_run(const LgCall *call, LgPlan *plan, LgRouteResult *result);
extern void
lg_router_record(LgSpendHandle *spend, const LgCall *call, LgAttempt *attempt);

/* ---- response cache (cache.c) ---- */
typedef struct LgCacheKey
{
	unsigned char hash[32];
	const char   *scope;  /* the tenant, or "*" */
	bool          lookup; /* false for "refresh": store only */
	int32         ttl_s;
} LgCacheKey;

typedef struct LgCacheHit
{
	char   *model;
	char   *provider;
	char   *upstream_model;
	char   *content;
	char   *finish_reason;
	LgUsage usage;        /* of the call that filled the entry */
	int64   cost_picousd; /* what that call cost: what a hit saves */
} LgCacheHit;

extern void lg_cache_key_canonical(StringInfo       out,
								   const char      *scope,
								   const LgRequest *req,
								   const char      *model,
								   const char      *max_tokens);
extern bool lg_cache_key_hash(unsigned char    hash[32],
							  const char      *scope,
							  const LgRequest *req,
							  const char      *model,
							  const char      *max_tokens);
extern bool lg_cache_prepare(LgCacheKey      *key,
							 const LgRequest *req,
							 const LgPlan    *plan,
							 const LgTenant  *tenant);
extern bool lg_cache_lookup(const LgCacheKey *key, LgCacheHit *hit);
extern bool
lg_cache_read(bytea *key, LgCacheHit *hit, TimestampTz *last_hit_at);
extern void  lg_cache_store(const LgCacheKey *key, const LgAttempt *attempt);
extern int64 lg_cache_evict(void);

/* ---- limits, breakers and status (limits.c, events.c) ---- */
typedef enum LgOutcome
{
	LG_OUTCOME_OK,
	LG_OUTCOME_TRANSIENT, /* 429, 5xx, timeout, connection: counts for the breaker */
	LG_OUTCOME_FAILED,   /* any other failure: counted as an error only */
	LG_OUTCOME_CANCELLED /* cut short by an interrupt: neither */
} LgOutcome;

struct LgProviderState;
struct LgDeploymentState;

/* One attempt's hold on a provider: released exactly once. */
typedef struct LgAdmission
{
	struct LgProviderState   *provider;
	struct LgDeploymentState *deployment;
	int64                     tokens; /* the estimate counted at admission */
	int64                     second; /* the window bucket it was counted in */
	bool                      probe;  /* a half-open breaker's probe */
	bool                      held;
} LgAdmission;

typedef struct LgProviderSnapshot
{
	int         status;        /* LgRuntimeStatus */
	int         breaker;       /* LgBreaker */
	bool        breaker_ready; /* open, cool-down over: the next call probes */
	int32       in_flight;
	int32       requests; /* last minute */
	int32       errors;
	int64       tokens;
	double      avg_latency_ms;
	int32       consecutive_failures;
	TimestampTz status_since;
	char        last_error[160];
} LgProviderSnapshot;

extern bool lg_admit(const LgDeployment *dep,
					 int64               tokens,
					 LgAdmission        *adm,
					 const char        **why);
extern void lg_release(LgAdmission        *adm,
					   const LgDeployment *dep,
					   LgOutcome           outcome,
					   int64               tokens,
					   double              latency_ms,
					   const char         *error);
extern void lg_limits_release_all(void);
extern void lg_deployment_load(const LgDeployment *dep,
							   int                *in_flight,
							   double             *latency_ms,
							   bool               *has_latency);
extern int  lg_weighted_choose(LgDeployment *cands, int n);
extern bool lg_provider_snapshot(const char *name, LgProviderSnapshot *out);
extern void lg_limits_refresh_statuses(void);
extern const char *lg_runtime_status_name(int status);
extern const char *lg_breaker_name(int breaker);
extern int         lg_events_flush(void);
extern bool        lg_events_waiting(Oid dboid);
extern int         lg_events_other_databases(Oid *dboids, int n, int max);
extern void        lg_events_wait_for_writers(void);
extern int         lg_events_discard(Oid dboid);

/* ---- shared memory (shmem.c) ---- */
extern void lg_shmem_init(void);
extern void lg_shmem_require(void);
extern void lg_worker_wake(void);
extern void lg_nap(int ms);

/* ---- background worker and maintenance (worker.c, maintenance.c) ---- */
extern char *lg_database;
extern int   lg_worker_interval_ms;
extern int   lg_spend_queue_size;
extern int   lg_transactional_ledger_rows;
extern int   lg_spend_write_delay_ms;
extern int   lg_max_retries;
extern int   lg_retry_backoff_ms;
extern int   lg_retry_after_max_ms;
extern bool  lg_cache_enabled;
extern int   lg_cache_ttl_s;
extern int   lg_cache_max_kb;

/* One maintenance pass: what it was asked to do and what it did. */
typedef struct LgMaintenance
{
	TimestampTz   at;
	bool          full; /* every duty, not only writing spend */
	LgSpendReport spend;
	bool          more; /* stopped at its row limit: run again */
	int           events_written;
	int64         cache_evicted;
	int           rates;       /* exchange rates refreshed, -1: failed */
	char         *rates_error; /* why they could not be */
	bool          deliver_webhooks;
	int           webhooks;   /* deliveries attempted */
	bool          forced;     /* llm_maintenance(): every duty, due or not */
	int64         rolled_up;  /* ledger rows folded into the rollups */
	char         *partitions; /* what maintain_partitions did (json) */
	int           periods_closed; /* budget periods closed */
	int           alerts_swept;   /* thresholds fired without a call */
	int           reconciled;     /* budget counters set to the ledger */
	double        duration_ms;
} LgMaintenance;

extern void   lg_worker_register(void);
extern void   lg_maintenance_run(LgMaintenance *m, bool wait_for_writers);
extern Jsonb *lg_maintenance_jsonb(const LgMaintenance *m);

/* ---- writing jsonb results (json_out.c) ---- */
extern void lg_jkey(StringInfo b, bool *first, const char *name);
extern void
lg_jstr(StringInfo b, bool *first, const char *name, const char *value);
extern void lg_jint(StringInfo b, bool *first, const char *name, int64 value);
extern void lg_jbool(StringInfo b, bool *first, const char *name, bool value);
extern Jsonb *lg_jfinish(StringInfo b);

/* the same, built as a JsonbValue tree (name NULL: an array element) */
typedef struct LgJb
{
	JsonbParseState *state;
	JsonbValue      *last;
} LgJb;
extern void lg_jb_begin(LgJb *b, const char *name, bool array);
extern void lg_jb_end(LgJb *b, bool array);
extern void lg_jb_str(LgJb *b, const char *name, const char *value);
extern void lg_jb_int(LgJb *b, const char *name, int64 value);
extern void lg_jb_bool(LgJb *b, const char *name, bool value);
extern void lg_jb_null(LgJb *b, const char *name);
extern void lg_jb_number(LgJb *b, const char *name, const char *numeric_text);
extern void
lg_jb_numeric(LgJb *b, const char *name, struct NumericData *value);
extern Jsonb *lg_jb_finish(LgJb *b);

/* ---- result (result.c) ---- */
extern Jsonb *lg_result_build(const LgCall    *call,
							  const LgAttempt *attempts,
							  int              nattempts,
							  const LgAttempt *final,
							  const LgSkip    *skipped,
							  int              nskipped,
							  double           latency_ms);

#endif /* LG_LLM_GATEWAY_H */
