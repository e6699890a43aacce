/*
 * account.h — what a call is accountable to: the tenant's and agent's
 * quotas (rate limits) and budgets, and the reservations a call holds on
 * them while it runs.
 *
 *   LgLimits      the quotas and budgets that apply to one call, as the
 *                 catalog says (account_catalog.c)
 *   LgAccount     the call's admission: its reservations, settled attempt by
 *                 attempt and released at the end (account.c)
 *
 * Budget counters live in shared memory, one LgBudgetState per budget and
 * tenant (and agent), under LgShared.account_lock (budget.c); the per-minute
 * windows and concurrency of tenants and agents likewise (quota.c).
 * Amounts are integers in the budget's unit: pico-units of money (USD or the
 * budget's currency), tokens, or requests.
 */
#ifndef LG_ACCOUNT_H
#define LG_ACCOUNT_H

#include "llm_gateway.h"

#define ERRCODE_LG_AGENT_INACTIVE   MAKE_SQLSTATE('L', 'G', '0', '0', '8')
#define ERRCODE_LG_BUDGET_EXCEEDED  MAKE_SQLSTATE('L', 'G', '0', '4', '0')
#define ERRCODE_LG_RATE_LIMITED     MAKE_SQLSTATE('L', 'G', '0', '4', '1')
#define ERRCODE_LG_TENANT_SUSPENDED MAKE_SQLSTATE('L', 'G', '0', '4', '2')
#define ERRCODE_LG_ALERT_NOT_FOUND  MAKE_SQLSTATE('L', 'G', '0', '4', '4')
#define ERRCODE_LG_ACCOUNT_MEM_FULL MAKE_SQLSTATE('L', 'G', '0', '6', '1')

#define LG_MAX_THRESHOLDS 9     /* 8 configured + 1.0 */
#define LG_THRESHOLD_ONE  10000 /* thresholds are in 1/10000 of the limit */
#define LG_PICO           INT64CONST(1000000000000)

/* Synthetic budget ids: the daily request and token quotas. */
#define LG_QUOTA_RPD_ID (-1)
#define LG_QUOTA_TPD_ID (-2)

typedef enum LgUnit
{
	LG_UNIT_USD,
	LG_UNIT_CURRENCY,
	LG_UNIT_TOKENS,
	LG_UNIT_REQUESTS
} LgUnit;

typedef enum LgPeriod
{
	LG_PERIOD_DAILY,
	LG_PERIOD_WEEKLY,
	LG_PERIOD_MONTHLY
} LgPeriod;

typedef enum LgAtLimit
{
	LG_AT_LIMIT_BLOCK,
	LG_AT_LIMIT_ALLOW,
	LG_AT_LIMIT_DOWNGRADE
} LgAtLimit;

typedef enum LgSuspend
{
	LG_SUSPEND_NEVER,
	LG_SUSPEND_PERIOD,
	LG_SUSPEND_MANUAL
} LgSuspend;

/* One budget (or daily quota) that applies to a call. */
typedef struct LgBudget
{
	int64       id;    /* budgets.id, or LG_QUOTA_RPD_ID / LG_QUOTA_TPD_ID */
	const char *agent; /* NULL: the whole tenant */
	LgUnit      unit;
	char        unit_name[12]; /* usd, brl, tokens, requests */
	LgPeriod    period;
	int64       limit;
	double      rate; /* LG_UNIT_CURRENCY: units per USD */
	int32       thresholds[LG_MAX_THRESHOLDS];
	int         nthresholds;
	bool        remaining_style;
	LgAtLimit   at_limit;
	char       *downgrade_model;
	LgSuspend   suspend;
	bool        from_plan;
	TimestampTz period_start;
	TimestampTz period_end;
	/* this call's share: its estimate, and what it holds now */
	int64 estimate;
	int64 held;
} LgBudget;

/* Per-minute and concurrency limits of a tenant or an agent (0: none). */
typedef struct LgRateQuota
{
	const char *agent; /* NULL: the tenant's own */
	int32       rpm;
	int32       tpm;
	int32       max_concurrency;
	int64       second; /* where this call's tokens were counted */
	int64       tokens; /* ... and how many */
	bool        held;
} LgRateQuota;

/* The quotas of a tenant (merged with its plan's) or of an agent. */
typedef struct LgQuotaConfig
{
	int32 rpm;
	int32 tpm;
	int32 max_concurrency;
	int64 rpd;
	int64 tpd;
} LgQuotaConfig;

/* What the catalog knows about a call's limits (catalog.c). */
typedef struct LgLimitsSource
{
	const char   *tenant;
	const char   *agent;
	const char   *timezone;
	const char   *plan;
	LgQuotaConfig tenant_quota;
	LgQuotaConfig agent_quota;
	TimestampTz   day_start; /* today in the tenant's time zone */
	TimestampTz   day_end;
	TimestampTz   lifted_at;
	bool          all_agents;  /* every agent's budgets (status) */
	bool          has_budgets; /* the tenant or its plan has any */
} LgLimitsSource;

typedef struct LgLimits
{
	const char *tenant;
	LgRateQuota rates[2]; /* the tenant's, then the agent's */
	int         nrates;
	LgBudget   *budgets;
	int         nbudgets;
	TimestampTz lifted_at; /* suspensions before this are lifted */
} LgLimits;

/* The admission of one call. */
typedef struct LgAccount
{
	LgLimits        *limits;
	const LgRequest *req;
	int64            prompt_tokens;   /* estimate */
	int64            tokens_estimate; /* counted in the quota windows */
	int64            tokens_used;     /* input + output of every attempt */
	bool             downgraded;
	const char      *downgrade_to;
	bool             over_budget; /* admitted past a limit ("allow") */
	bool             sent; /* an attempt went out, or the cache answered */
	bool             in_flight;       /* an attempt is out, not settled yet */
	LgUsage          in_flight_floor; /* what it costs at least if cut short */
	LgPrice          in_flight_price;
	bool             active;
} LgAccount;

typedef enum LgAdmitResult
{
	LG_ADMIT_OK,
	LG_ADMIT_DOWNGRADE /* a budget says: go to its downgrade_model */
} LgAdmitResult;

/* ---- settings (guc_account.c) ---- */
extern int   lg_max_tenants;
extern char *lg_fallback_rates;
extern char *lg_exchange_rate_url;
extern int   lg_exchange_rate_interval_s;
extern char *lg_alert_webhook;
extern int   lg_webhook_timeout_ms;
extern int   lg_webhook_max_attempts;
extern int   lg_webhook_retry_ms;
extern int   lg_rate_alert_interval_s;
extern int   lg_ledger_retention_months;
extern int   lg_content_retention_days;
extern int   lg_sweep_interval_s;

extern void lg_define_account_settings(void);

/* ---- account_catalog.c ---- */
extern void
lg_limits_load(LgLimits *lim, const LgLimitsSource *src, MemoryContext cxt);
extern bool lg_limits_ready(const LgLimits *lim);
extern void lg_limits_make_ready(const LgLimits *lim);

/* ---- account.c ---- */
extern LgAdmitResult lg_account_admit(LgAccount       *acct,
									  LgLimits        *limits,
									  const LgRequest *req,
									  const LgPlan    *plan,
									  bool             downgraded);
extern const char   *lg_account_downgrade_model(const LgAccount *acct);
extern bool          lg_account_attempt_begin(LgAccount          *acct,
											  const LgDeployment *dep,
											  const char        **why);
extern void          lg_account_attempt_sent(LgAccount *acct);
extern void  lg_account_attempt_end(LgAccount *acct, const LgAttempt *a);
extern void  lg_account_cache_hit(LgAccount *acct);
extern void  lg_account_finish(LgAccount *acct);
extern void  lg_account_abort(LgAccount *acct);
extern int   lg_account_sweep(LgLimits *limits);
extern int   lg_budgets_reconcile(LgLimits *limits);
extern int64 lg_account_estimate(const LgAccount    *acct,
								 const LgBudget     *b,
								 const LgDeployment *dep);
extern void  lg_account_track(LgAccount *acct);
extern void  lg_raise_suspended(const char *tenant,
								TimestampTz until,
								const char *reason) pg_attribute_noreturn();

/* ---- budget.c: counters in shared memory ---- */
typedef struct LgBudgetSnapshot
{
	int64       spent;
	int64       reserved;
	bool        suspended;
	TimestampTz suspended_at;
	TimestampTz suspended_until;
} LgBudgetSnapshot;

typedef struct LgBudgetState LgBudgetState;

extern Size lg_budget_shmem_size(void);
extern void lg_budget_shmem_attach(void);
extern bool lg_budget_ready(const char *tenant, const LgBudget *b);
extern void lg_budget_install(const char     *tenant,
							  const LgBudget *b,
							  int64           spent,
							  const int32    *fired,
							  int             nfired);
extern void lg_budget_snapshot(const char       *tenant,
							   const LgBudget   *b,
							   LgBudgetSnapshot *out);
extern int64
lg_budget_measure(const LgBudget *b, const LgUsage *usage, int64 cost_picousd);
extern char       *lg_budget_format(const LgBudget *b, int64 amount);
extern const char *lg_period_name(LgPeriod period);
extern bool
lg_budget_quiet(const char *tenant, const LgBudget *b, uint64 *changes);
extern bool lg_budget_reconcile(const char     *tenant,
								const LgBudget *b,
								uint64          changes,
								int64           ledger_spent);

/* With LgShared.account_lock held (account.c). */
extern LgBudgetState *lg_budget_state(const char *tenant, const LgBudget *b);
extern bool lg_budget_suspended(LgBudgetState *s, TimestampTz lifted_at);
extern bool
lg_budget_fits(const LgBudgetState *s, const LgBudget *b, int64 extra);
extern void lg_budget_hold(LgBudgetState *s, LgBudget *b, int64 amount);
extern void lg_budget_settle(LgBudgetState *s, LgBudget *b, int64 spent);
extern void lg_budget_release(LgBudgetState *s, LgBudget *b);
extern int  lg_budget_crossed(LgBudgetState  *s,
							  const LgBudget *b,
							  int32          *crossed,
							  bool           *suspend_now);
extern void lg_budget_unfire(LgBudgetState *s, int32 threshold);
extern void lg_budget_state_values(const LgBudgetState *s,
								   int64               *spent,
								   int64               *reserved,
								   TimestampTz         *suspended_until);

/* ---- quota.c: with LgShared.account_lock held ---- */
typedef enum LgQuotaRefusal
{
	LG_QUOTA_OK,
	LG_QUOTA_CONCURRENCY,
	LG_QUOTA_RPM,
	LG_QUOTA_TPM,
	LG_QUOTA_MEMORY_FULL
} LgQuotaRefusal;

extern Size           lg_quota_shmem_size(void);
extern void           lg_quota_shmem_attach(void);
extern LgQuotaRefusal lg_quota_refusal(LgRateQuota *q,
									   const char  *tenant,
									   int64        tokens,
									   int         *retry_after_s);
extern char *
lg_quota_describe(const LgRateQuota *q, LgQuotaRefusal why, int64 tokens);
extern void lg_quota_take(LgRateQuota *q, const char *tenant, int64 tokens);
extern void
lg_quota_give_back(LgRateQuota *q, const char *tenant, int64 tokens_used);
extern bool lg_quota_alert_due(const LgRateQuota *q, const char *tenant);

/* ---- alerts.c, webhook.c, currency.c ---- */
typedef enum LgAlertType
{
	LG_ALERT_BUDGET_WARNING,
	LG_ALERT_BUDGET_CRITICAL,
	LG_ALERT_BUDGET_EXCEEDED,
	LG_ALERT_DAILY_WARNING,
	LG_ALERT_DAILY_EXCEEDED,
	LG_ALERT_RATE_LIMITED,
	LG_ALERT_PROVIDER_ERROR,
	LG_ALERT_CIRCUIT_OPEN,
	LG_ALERT_CIRCUIT_CLOSED
} LgAlertType;

struct LgEvent;

extern bool lg_alert_budget(const char     *tenant,
							const LgBudget *b,
							int32           threshold,
							int64           used,
							bool            suspend,
							TimestampTz     suspended_until);
extern void
lg_alert_rate_limited(const char *tenant, const char *agent, const char *what);
extern const char *lg_alert_type_name(LgAlertType type);
extern void        lg_alert_write(const struct LgEvent *e);
extern void        lg_alert_write_provider(const struct LgEvent *e);

#define LG_WEBHOOK_BATCH 20

typedef struct LgWebhookJob
{
	int64  alert_id;
	int32  attempt;
	char  *url;
	char  *payload;
	bool   ok;
	long   http_status;
	char  *error;
	double duration_ms;
} LgWebhookJob;

extern int  lg_webhook_pick(LgWebhookJob *jobs, int max, MemoryContext cxt);
extern void lg_webhook_post(LgWebhookJob *job);
extern void lg_webhook_record(const LgWebhookJob *job);
extern int  lg_webhook_deliver_here(int max);

extern int   lg_rates_refresh(char **error);
extern void  lg_duties_run(LgMaintenance *m);
extern void  lg_duty_partitions(LgMaintenance *m);
extern char *lg_fallback_rate(const char *currency);
extern void  lg_rate_for(const char  *currency,
						 char        *stored_rate,
						 const char  *stored_source,
						 bool         refresh_failed,
						 char       **rate,
						 const char **source);

#endif /* LG_ACCOUNT_H */
