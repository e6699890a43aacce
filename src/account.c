/*
 * account.c — a call's admission against its tenant's and agent's quotas
 * and budgets (account_settle.c settles what it spends).
 *
 * Admission is one atomic check-and-reserve under LgShared.account_lock:
 * the tenant is not suspended, no per-minute or concurrency quota is at its
 * limit, and for every budget spent + reserved + estimate <= limit, where
 * the estimate is the worst case of the call on any of its candidate
 * deployments (the prompt estimated from its length, and max_tokens — or
 * the model's output cap — at the output price).  Only then is anything
 * taken: one request and the token estimate in each quota window, the
 * estimate reserved on each budget.  A budget that does not fit decides by
 * its at_limit: block refuses the call, allow lets it through flagged
 * over_budget, downgrade sends it to the budget's downgrade model (the
 * caller plans again and admits with downgraded = true).  The caller's
 * transaction never holds a row lock for any of this, and nothing is
 * allocated while the lock is held: refusals are worded after it.
 */
#include "account.h"
#include "shmem.h"

#define UNKNOWN_OUTPUT_CAP 16384 /* output tokens when nothing caps them */

typedef enum RefusalKind
{
	REFUSE_NONE,
	REFUSE_SUSPENDED,
	REFUSE_RATE,
	REFUSE_DAILY,
	REFUSE_BUDGET,
	REFUSE_DOWNGRADE,
	REFUSE_MEMORY
} RefusalKind;

typedef struct Refusal
{
	RefusalKind    kind;
	int            index; /* the budget or rate quota */
	LgQuotaRefusal quota; /* a rate quota's limit */
	int64          tokens;
	int            retry_after_s;
	int64          spent;
	int64          reserved;
	TimestampTz    until;
	bool           alert;
} Refusal;

/* ---- estimates ---- */

static int64
output_worst(const LgRequest *req, const LgDeployment *dep)
{
	if (req->opt.max_tokens > 0)
		return req->opt.max_tokens;
	return dep->max_output_tokens > 0 ? dep->max_output_tokens
									  : UNKNOWN_OUTPUT_CAP;
}

/* The most the call can add to budget b on deployment dep. */
int64
lg_account_estimate(const LgAccount    *acct,
					const LgBudget     *b,
					const LgDeployment *dep)
{
	LgUsage u = {0};

	if (b->unit == LG_UNIT_REQUESTS)
		return 1;
	u.input_tokens = acct->prompt_tokens;
	u.output_tokens = output_worst(acct->req, dep);
	return lg_budget_measure(b, &u, lg_cost_picousd(&u, &dep->price));
}

static void
estimate_worst(LgAccount *acct, const LgPlan *plan, int64 *tokens)
{
	LgLimits *lim = acct->limits;

	*tokens = 0;
	for (int c = 0; c < plan->ncands; c++)
		*tokens = Max(*tokens,
					  acct->prompt_tokens +
						  output_worst(acct->req, &plan->cands[c]));
	for (int i = 0; i < lim->nbudgets; i++)
	{
		LgBudget *b = &lim->budgets[i];

		b->estimate = 0;
		b->held = 0;
		for (int c = 0; c < plan->ncands; c++)
			b->estimate = Max(b->estimate,
							  lg_account_estimate(acct, b, &plan->cands[c]));
	}
}

/* ---- admission (account_lock held) ---- */

/* A rate_limited alert for a daily quota, throttled like the others. */
static bool
rate_alert_due(const LgLimits *lim, const char *agent)
{
	LgRateQuota q;

	memset(&q, 0, sizeof(q));
	q.agent = agent;
	return lg_quota_alert_due(&q, lim->tenant);
}

static bool
check_suspension(LgAccount *acct, Refusal *r)
{
	LgLimits *lim = acct->limits;

	for (int i = 0; i < lim->nbudgets; i++)
	{
		LgBudget      *b = &lim->budgets[i];
		LgBudgetState *s;
		int64          spent;
		int64          reserved;

		if (b->agent != NULL || b->id < 0)
			continue;
		if ((s = lg_budget_state(lim->tenant, b)) == NULL)
			continue;
		if (lg_budget_suspended(s, lim->lifted_at))
		{
			r->kind = REFUSE_SUSPENDED;
			r->index = i;
			lg_budget_state_values(s, &spent, &reserved, &r->until);
			return true;
		}
	}
	return false;
}

static bool
check_rates(LgAccount *acct, int64 tokens, Refusal *r)
{
	LgLimits *lim = acct->limits;

	for (int i = 0; i < lim->nrates; i++)
	{
		LgRateQuota   *q = &lim->rates[i];
		LgQuotaRefusal why =
			lg_quota_refusal(q, lim->tenant, tokens, &r->retry_after_s);

		if (why != LG_QUOTA_OK)
		{
			r->kind =
				why == LG_QUOTA_MEMORY_FULL ? REFUSE_MEMORY : REFUSE_RATE;
			r->index = i;
			r->quota = why;
			r->tokens = tokens;
			r->alert = lg_quota_alert_due(q, lim->tenant);
			return true;
		}
	}
	return false;
}

/* Budgets: block (or a second downgrade) refuses, downgrade redirects. */
static bool
check_budgets(LgAccount *acct, bool downgraded, Refusal *r)
{
	LgLimits *lim = acct->limits;
	int       downgrade = -1;

	for (int i = 0; i < lim->nbudgets; i++)
	{
		LgBudget      *b = &lim->budgets[i];
		LgBudgetState *s = lg_budget_state(lim->tenant, b);
		TimestampTz    until;

		if (s == NULL)
		{
			r->kind = REFUSE_MEMORY;
			return true;
		}
		if (lg_budget_fits(s, b, b->estimate))
			continue;
		if (b->at_limit == LG_AT_LIMIT_ALLOW)
		{
			acct->over_budget = true;
			continue;
		}
		if (b->at_limit == LG_AT_LIMIT_DOWNGRADE && !downgraded)
		{
			downgrade = downgrade < 0 ? i : downgrade;
			continue;
		}
		r->kind = b->id < 0 ? REFUSE_DAILY : REFUSE_BUDGET;
		r->index = i;
		lg_budget_state_values(s, &r->spent, &r->reserved, &until);
		r->alert = b->id < 0 && rate_alert_due(lim, b->agent);
		return true;
	}
	if (downgrade < 0)
		return false;
	r->kind = REFUSE_DOWNGRADE;
	r->index = downgrade;
	return true;
}

static void
take(LgAccount *acct, int64 tokens)
{
	LgLimits *lim = acct->limits;

	for (int i = 0; i < lim->nrates; i++)
		lg_quota_take(&lim->rates[i], lim->tenant, tokens);
	for (int i = 0; i < lim->nbudgets; i++)
	{
		LgBudget *b = &lim->budgets[i];

		lg_budget_hold(lg_budget_state(lim->tenant, b), b, b->estimate);
	}
	acct->tokens_estimate = tokens;
}

/* ---- refusals (no lock held) ---- */

void
lg_raise_suspended(const char *tenant, TimestampTz until, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_LG_TENANT_SUSPENDED),
			 errmsg("tenant \"%s\" is suspended", tenant),
			 until == DT_NOEND
				 ? errdetail("%s; the suspension holds until an administrator "
							 "lifts it.",
							 reason)
				 : errdetail("%s; the suspension ends at %s.",
							 reason,
							 timestamptz_to_str(until)),
			 errhint("An administrator can lift it with "
					 "llm_tenant_set('%s', '{\"suspended\": false}').",
					 tenant)));
}

static const char *
who(const LgLimits *lim, const char *agent)
{
	return agent
			   ? psprintf("agent \"%s\" of tenant \"%s\"", agent, lim->tenant)
			   : psprintf("tenant \"%s\"", lim->tenant);
}

static void
refuse(LgAccount *acct, const Refusal *r)
{
	LgLimits       *lim = acct->limits;
	const LgBudget *b = r->kind == REFUSE_RATE || r->kind == REFUSE_MEMORY
							? NULL
							: &lim->budgets[r->index];
	char           *what;

	switch (r->kind)
	{
		case REFUSE_SUSPENDED:
			lg_raise_suspended(lim->tenant,
							   r->until,
							   psprintf("its %s %s budget was used up",
										lg_period_name(b->period),
										b->unit_name));
			break;
		case REFUSE_RATE:
			what =
				lg_quota_describe(&lim->rates[r->index], r->quota, r->tokens);
			if (r->alert)
				lg_alert_rate_limited(lim->tenant,
									  lim->rates[r->index].agent,
									  what);
			ereport(ERROR,
					(errcode(ERRCODE_LG_RATE_LIMITED),
					 errmsg("rate limit exceeded for %s: %s",
							who(lim, lim->rates[r->index].agent),
							what),
					 r->retry_after_s >= 0
						 ? errdetail("Retry after %d s.", r->retry_after_s)
						 : errdetail("This call can never fit: lower "
									 "max_tokens or the prompt."),
					 errhint("An administrator sets the limits with "
							 "llm_tenant_set(), "
							 "llm_agent_set() or the tenant's plan.")));
			break;
		case REFUSE_DAILY:
			if (r->alert)
				lg_alert_rate_limited(lim->tenant,
									  b->agent,
									  psprintf(INT64_FORMAT " %s per day",
											   b->limit,
											   b->unit_name));
			ereport(ERROR,
					(errcode(ERRCODE_LG_RATE_LIMITED),
					 errmsg("daily limit exceeded for %s: " INT64_FORMAT
							" %s per day",
							who(lim, b->agent),
							b->limit,
							b->unit_name),
					 errdetail("Used " INT64_FORMAT ", " INT64_FORMAT
							   " held by calls in flight. Retry after %d s, "
							   "when the day ends at %s.",
							   r->spent,
							   r->reserved,
							   (int) Max((b->period_end -
										  GetCurrentTimestamp()) /
											 USECS_PER_SEC,
										 1),
							   timestamptz_to_str(b->period_end)),
					 errhint("An administrator sets rpd and tpd with "
							 "llm_tenant_set(), "
							 "llm_agent_set() or the tenant's plan.")));
			break;
		case REFUSE_BUDGET:
			ereport(ERROR,
					(errcode(ERRCODE_LG_BUDGET_EXCEEDED),
					 errmsg("%s budget of %s exceeded: %s used of %s",
							lg_period_name(b->period),
							who(lim, b->agent),
							lg_budget_format(b, r->spent),
							lg_budget_format(b, b->limit)),
					 errdetail("Used %s, %s held by calls in flight, and this "
							   "call may cost up "
							   "to %s. The period resets at %s.",
							   lg_budget_format(b, r->spent),
							   lg_budget_format(b, r->reserved),
							   lg_budget_format(b, b->estimate),
							   timestamptz_to_str(b->period_end)),
					 errhint("An administrator can raise it with "
							 "llm_budget_set(); a lower "
							 "max_tokens lowers what a call may cost.")));
			break;
		case REFUSE_MEMORY:
			ereport(
				ERROR,
				(errcode(ERRCODE_LG_ACCOUNT_MEM_FULL),
				 errmsg(
					 "too many budgets and quotas in use to track them all"),
				 errhint(
					 "Raise llm_gateway.max_tenants (a restart is needed).")));
			break;
		default:
			break;
	}
}

LgAdmitResult
lg_account_admit(LgAccount       *acct,
				 LgLimits        *limits,
				 const LgRequest *req,
				 const LgPlan    *plan,
				 bool             downgraded)
{
	Refusal r;
	int64   tokens;

	memset(acct, 0, sizeof(*acct));
	memset(&r, 0, sizeof(r));
	acct->limits = limits;
	acct->req = req;
	acct->prompt_tokens = lg_prompt_estimate(req);
	acct->downgraded = downgraded;
	estimate_worst(acct, plan, &tokens);

	LWLockAcquire(lg_shared->account_lock, LW_EXCLUSIVE);
	if (!check_suspension(acct, &r) && !check_rates(acct, tokens, &r) &&
		!check_budgets(acct, downgraded, &r))
		take(acct, tokens);
	LWLockRelease(lg_shared->account_lock);

	if (r.kind == REFUSE_DOWNGRADE)
	{
		acct->downgrade_to = limits->budgets[r.index].downgrade_model;
		return LG_ADMIT_DOWNGRADE;
	}
	if (r.kind != REFUSE_NONE)
		refuse(acct, &r);
	lg_account_track(acct);
	return LG_ADMIT_OK;
}

const char *
lg_account_downgrade_model(const LgAccount *acct)
{
	return acct->downgrade_to;
}
