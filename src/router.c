/*
 * router.c — order the candidates, then try them: retries with backoff on
 * transient errors, fallback to the next deployment, and the ledger row of
 * every attempt.
 *
 * Order: group by group (the route's models, then each fallback model), and
 * within a group by the route's strategy:
 *   priority        lowest deployment priority, then provider priority
 *   weighted        smooth weighted round-robin over shared counters
 *   least_busy      fewest calls in flight right now (all backends)
 *   lowest_latency  lowest moving average latency (unmeasured ones first)
 *   lowest_cost     lowest estimated cost of this very request
 *
 * For each candidate: admission (limits.c) may refuse it (breaker open, at a
 * limit) and the router moves on without waiting.  An attempt that fails
 * transiently (429, 5xx, 529, timeout, connection) is retried on the same
 * deployment up to the route's retries, after an exponential backoff with
 * jitter or the provider's retry-after when that is short enough.  Then:
 *   - 400/422 (the request itself is wrong): stop, no fallback;
 *   - context length exceeded: fall back only to larger context windows;
 *   - 401/403/404, malformed or oversized answers, exhausted retries: fall
 *     back to the next candidate, unless the call said "fallback": false.
 *
 * Every attempt that sent a request is recorded (spend.c) with its number,
 * whether it was a fallback and why.  Admissions are released on every
 * path: the PG_CATCH here, and limits.c's exit callback for FATAL.
 */
#include "account.h"

#include "common/pg_prng.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#define MAX_BACKOFF_MS 30000
#define DEFAULT_OUTPUT 1024 /* output tokens assumed when nothing caps them */

typedef enum FailKind
{
	FAIL_TRANSIENT, /* retry, then fall back */
	FAIL_CLIENT,    /* the request is wrong: stop */
	FAIL_CONTEXT,   /* too long for this model: a larger one may do */
	FAIL_PROVIDER   /* this deployment cannot: fall back */
} FailKind;

/* ---- ordering ---- */

typedef struct Ranked
{
	LgDeployment dep;
	double       key;
} Ranked;

static int
compare_ranked(const void *a, const void *b)
{
	const Ranked *x = a;
	const Ranked *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->dep.priority != y->dep.priority)
		return x->dep.priority < y->dep.priority ? -1 : 1;
	if (x->dep.provider.priority != y->dep.provider.priority)
		return x->dep.provider.priority < y->dep.provider.priority ? -1 : 1;
	return strcmp(x->dep.provider.name, y->dep.provider.name);
}

static int64
output_cap(const LgRequest *req, const LgDeployment *dep)
{
	if (req->opt.max_tokens > 0)
		return req->opt.max_tokens;
	return dep->max_output_tokens > 0
			   ? Min(dep->max_output_tokens, DEFAULT_OUTPUT)
			   : DEFAULT_OUTPUT;
}

static double
strategy_key(LgStrategy          strategy,
			 const LgDeployment *dep,
			 const LgRequest    *req)
{
	int    in_flight;
	double latency;
	bool   has_latency;

	switch (strategy)
	{
		case LG_STRATEGY_LEAST_BUSY:
			lg_deployment_load(dep, &in_flight, &latency, &has_latency);
			return in_flight;
		case LG_STRATEGY_LOWEST_LATENCY:
			lg_deployment_load(dep, &in_flight, &latency, &has_latency);
			return has_latency ? latency : -1; /* unmeasured: try it */
		case LG_STRATEGY_LOWEST_COST:
			return (double) lg_prompt_estimate(req) * dep->price.input +
				   (double) output_cap(req, dep) * dep->price.output;
		default:
			return 0;
	}
}

/* Order cands[from, to) by the strategy. */
static void
order_group(LgDeployment    *cands,
			int              from,
			int              to,
			LgStrategy       strategy,
			const LgRequest *req)
{
	int     n = to - from;
	Ranked *ranked = palloc(sizeof(Ranked) * n);
	int     first = -1;

	if (strategy == LG_STRATEGY_WEIGHTED && n > 1)
		first = lg_weighted_choose(&cands[from], n);
	for (int i = 0; i < n; i++)
	{
		ranked[i].dep = cands[from + i];
		ranked[i].key =
			(i == first) ? -1 : strategy_key(strategy, &cands[from + i], req);
	}
	qsort(ranked, n, sizeof(Ranked), compare_ranked);
	for (int i = 0; i < n; i++)
		cands[from + i] = ranked[i].dep;
	pfree(ranked);
}

static void
order_candidates(LgPlan *plan, const LgRequest *req)
{
	int from = 0;

	while (from < plan->ncands)
	{
		int to = from;

		while (to < plan->ncands &&
			   plan->cands[to].group == plan->cands[from].group)
			to++;
		/* fallback models keep the plain priority order */
		order_group(plan->cands,
					from,
					to,
					plan->cands[from].group == 0 ? plan->strategy
												 : LG_STRATEGY_PRIORITY,
					req);
		from = to;
	}
}

/* ---- classifying failures ---- */

static bool
mentions_context_length(const LgAttempt *a)
{
	const char *texts[] = {a->error, a->detail};

	for (int i = 0; i < 2; i++)
		if (texts[i] && (strstr(texts[i], "context_length") ||
						 strstr(texts[i], "context length") ||
						 strstr(texts[i], "context window") ||
						 strstr(texts[i], "maximum context") ||
						 strstr(texts[i], "too long")))
			return true;
	return false;
}

static FailKind
classify(const LgAttempt *a)
{
	if (a->sqlstate == ERRCODE_LG_PROVIDER_RATE_LIMITED ||
		a->sqlstate == ERRCODE_LG_PROVIDER_UNAVAILABLE ||
		a->sqlstate == ERRCODE_LG_PROVIDER_TIMEOUT ||
		a->sqlstate == ERRCODE_LG_PROVIDER_CONNECT)
		return FAIL_TRANSIENT;
	if (a->sqlstate == ERRCODE_LG_PROVIDER_REJECTED)
	{
		if (a->http_status == 413 || mentions_context_length(a))
			return FAIL_CONTEXT;
		if (a->http_status == 404)
			return FAIL_PROVIDER; /* this deployment's model is missing */
		return FAIL_CLIENT;
	}
	return FAIL_PROVIDER;
}

static LgOutcome
outcome_of(const LgAttempt *a)
{
	if (a->status == LG_ATTEMPT_OK)
		return LG_OUTCOME_OK;
	return classify(a) == FAIL_TRANSIENT ? LG_OUTCOME_TRANSIENT
										 : LG_OUTCOME_FAILED;
}

/* ---- waiting between retries ---- */

/*
 * The pause before retry number n (0-based): the provider's retry-after if
 * it gave one no longer than llm_gateway.retry_after_max_ms (-1 if longer:
 * do not retry), else an exponential backoff with jitter in [d/2, d].
 */
static int
backoff_ms(int n, const LgAttempt *a)
{
	int64 d;

	if (a->retry_after_ms >= 0)
		return a->retry_after_ms <= lg_retry_after_max_ms ? a->retry_after_ms
														  : -1;
	d = Min((int64) lg_retry_backoff_ms << Min(n, 16), MAX_BACKOFF_MS);
	return (int) (d / 2 +
				  pg_prng_uint64_range(&pg_global_prng_state, 0, d / 2));
}

static void
sleep_ms(int ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long left = (long) ((until - GetCurrentTimestamp()) / 1000);

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			return;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- one attempt, recorded ---- */

typedef struct SpendHook
{
	LgSpendHandle      *handle;
	const LgCall       *call;
	const LgDeployment *dep;
	int                 number;
} SpendHook;

static void
spend_before_send(void *arg)
{
	SpendHook *h = (SpendHook *) arg;

	lg_spend_begin(h->handle, h->call, h->dep, h->number);
	lg_account_attempt_sent(h->call->account);
}

static void
spend_on_abandon(void *arg, const char *why)
{
	lg_spend_interrupted(((SpendHook *) arg)->handle, why);
}

/* Record the attempt: in its spend slot, and in the caller's transaction. */
void
lg_router_record(LgSpendHandle *spend, const LgCall *call, LgAttempt *attempt)
{
	LgSpendEntry *entry = palloc(sizeof(LgSpendEntry));

	lg_spend_settle(spend, call, attempt, entry);
	if (spend->caller_writes)
	{
		lg_ledger_insert(entry, true);
		lg_spend_inserted(spend);
	}
	attempt->usage_id = spend->usage_id;
	pfree(entry);
}

static void
run_admitted(LgAttempt          *a,
			 const LgCall       *call,
			 const LgDeployment *dep,
			 LgAdmission        *adm)
{
	LgSpendHandle  spend;
	SpendHook      hook = {&spend, call, dep, a->number};
	LgAttemptHooks hooks = {spend_before_send, spend_on_abandon, &hook};
	bool           was_fallback = a->was_fallback;
	char          *reason = a->fallback_reason;
	int            number = a->number;

	PG_TRY();
	{
		lg_attempt_run(a, call->req, dep, &hooks);
	}
	PG_CATCH();
	{
		lg_limits_release_all();
		PG_RE_THROW();
	}
	PG_END_TRY();
	lg_account_attempt_end(call->account, a);
	a->number = number;
	a->was_fallback = was_fallback;
	a->fallback_reason = reason;
	lg_router_record(&spend, call, a);
	lg_release(adm,
			   dep,
			   outcome_of(a),
			   a->reply.usage.input_tokens + a->reply.usage.output_tokens,
			   a->latency_ms,
			   a->status == LG_ATTEMPT_OK ? NULL : a->error);
}

/* ---- the loop ---- */

static void
add_skip(LgRouteResult *r, const LgDeployment *dep, const char *why)
{
	if (r->nskipped == r->skipped_cap)
	{
		r->skipped_cap = r->skipped_cap ? r->skipped_cap * 2 : 4;
		r->skipped =
			r->skipped ? repalloc(r->skipped, sizeof(LgSkip) * r->skipped_cap)
					   : palloc(sizeof(LgSkip) * r->skipped_cap);
	}
	r->skipped[r->nskipped].dep = dep;
	r->skipped[r->nskipped].reason = pstrdup(why);
	r->nskipped++;
}

static LgAttempt *
new_attempt(LgRouteResult *r, int first_index, int index, const char *reason)
{
	LgAttempt *a = &r->attempts[r->nattempts];

	memset(a, 0, sizeof(*a));
	a->number = r->nattempts + 1;
	a->was_fallback = first_index >= 0 && first_index != index;
	a->fallback_reason = a->was_fallback && reason ? pstrdup(reason) : NULL;
	r->nattempts++;
	return a;
}

/* A short reason naming what went wrong with an attempt, for the next row. */
static char *
short_reason(const LgAttempt *a)
{
	return a->http_status
			   ? psprintf("%s: HTTP %ld",
						  a->dep->provider.name,
						  a->http_status)
			   : psprintf("%s: %s", a->dep->provider.name, a->error);
}

/* Why a candidate is not even tried, or NULL. */
static const char *
not_applicable(const LgDeployment *dep,
			   const LgRequest    *req,
			   int32               min_context)
{
	if (req->opt.max_tokens > 0 && dep->max_output_tokens > 0 &&
		req->opt.max_tokens > dep->max_output_tokens)
		return "max_tokens is above the model's output limit";
	if (min_context > 0 && dep->context_window <= min_context)
		return "its context window is not larger than the one that was "
			   "exceeded";
	return NULL;
}

void
lg_router_run(const LgCall *call, LgPlan *plan, LgRouteResult *r)
{
	const LgRequest *req = call->req;
	int   retries = plan->retries >= 0 ? plan->retries : lg_max_retries;
	int   first_index = -1;
	int32 min_context = 0;
	char *reason = NULL;

	memset(r, 0, sizeof(*r));
	r->attempts = palloc0(sizeof(LgAttempt) * plan->ncands * (retries + 1));
	order_candidates(plan, req);
	for (int c = 0; c < plan->ncands && !r->stopped; c++)
	{
		LgDeployment *dep = &plan->cands[c];
		const char   *why = not_applicable(dep, req, min_context);
		LgAttempt    *a = NULL;

		if (why)
		{
			add_skip(r, dep, why);
			continue;
		}
		for (int retry = 0; retry <= retries; retry++)
		{
			LgAdmission adm;
			int         pause;

			if (!lg_account_attempt_begin(call->account, dep, &why))
			{
				add_skip(r, dep, why);
				r->budget_refused = true;
				break;
			}
			if (!lg_admit(dep,
						  lg_prompt_estimate(req) + output_cap(req, dep),
						  &adm,
						  &why))
			{
				add_skip(r, dep, why);
				reason = psprintf("%s: %s", dep->provider.name, why);
				break;
			}
			if (first_index < 0)
				first_index = c;
			a = new_attempt(r, first_index, c, reason);
			run_admitted(a, call, dep, &adm);
			if (a->status == LG_ATTEMPT_OK)
			{
				r->final = a;
				return;
			}
			reason = short_reason(a);
			if (classify(a) != FAIL_TRANSIENT || retry == retries ||
				(pause = backoff_ms(retry, a)) < 0)
				break;
			sleep_ms(pause);
		}
		if (a == NULL || a->status == LG_ATTEMPT_OK)
			continue;
		r->last_failure = a;
		if (!req->opt.fallback || classify(a) == FAIL_CLIENT)
			r->stopped = true;
		else if (classify(a) == FAIL_CONTEXT)
			min_context = Max(dep->context_window, 1);
	}
}
