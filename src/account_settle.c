/*
 * account_settle.c — what a call's attempts spent, settled on its budgets,
 * and what it still holds given back on every way out.
 *
 * Each attempt settles its real cost (in each budget's unit) against the
 * reservation; an attempt after the first tops the reservation up to its
 * own worst case first, with the same check as admission.  The end of the
 * call counts the request and gives back the rest.  An error or cancel
 * ends the call too (lg_account_abort, from the caller's PG_CATCH), and so
 * do the transaction-abort and backend-exit callbacks for anything still
 * held: an attempt cut short in flight is settled at its prompt's cost, as
 * the ledger will record it (spend.c).
 *
 * Alerts for the thresholds a settlement crossed are queued after the lock
 * is released (alerts.c); one that cannot be queued is retried by the next
 * settlement.
 */
#include "account.h"
#include "shmem.h"

#include "access/xact.h"
#include "storage/ipc.h"

#define MAX_ACTIVE  8
#define MAX_PENDING 32

typedef struct PendingAlert
{
	int         budget;
	int32       threshold;
	int64       used;
	bool        suspend;
	TimestampTz until;
} PendingAlert;

static LgAccount *active[MAX_ACTIVE];
static int        nactive = 0;
static bool       callbacks_registered = false;

/* ---- tracking for the abort and exit callbacks ---- */

static void
release_at_exit(pg_attribute_unused() int   code,
				pg_attribute_unused() Datum arg)
{
	while (nactive > 0)
	{
		LgAccount *acct = active[nactive - 1];

		lg_account_abort(acct);
		if (nactive > 0 && active[nactive - 1] == acct)
			nactive--; /* not active any more: just forget it */
	}
}

static void
release_at_abort(XactEvent event, pg_attribute_unused() void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		release_at_exit(0, (Datum) 0);
}

void
lg_account_track(LgAccount *acct)
{
	if (!callbacks_registered)
	{
		before_shmem_exit(release_at_exit, (Datum) 0);
		RegisterXactCallback(release_at_abort, NULL);
		callbacks_registered = true;
	}
	if (nactive < MAX_ACTIVE)
		active[nactive++] = acct;
	acct->active = true;
}

static void
untrack(LgAccount *acct)
{
	acct->active = false;
	for (int i = 0; i < nactive; i++)
		if (active[i] == acct)
		{
			active[i] = active[--nactive];
			return;
		}
}

/* ---- settlement ---- */

/* Thresholds crossed by budget i, as alerts to queue (account_lock held). */
static int
collect_crossed(
	LgAccount *acct, int i, LgBudgetState *s, PendingAlert *p, int n)
{
	LgBudget   *b = &acct->limits->budgets[i];
	int32       crossed[LG_MAX_THRESHOLDS];
	bool        suspend;
	int         k;
	int64       spent;
	int64       reserved;
	TimestampTz until;

	if (b->id < 0)
		return n; /* daily quotas have no thresholds */
	k = lg_budget_crossed(s, b, crossed, &suspend);
	lg_budget_state_values(s, &spent, &reserved, &until);
	for (int j = 0; j < k; j++)
	{
		if (n == MAX_PENDING)
		{
			lg_budget_unfire(s, crossed[j]);
			continue;
		}
		p[n].budget = i;
		p[n].threshold = crossed[j];
		p[n].used = spent;
		p[n].suspend = suspend && crossed[j] >= LG_THRESHOLD_ONE;
		p[n].until = until;
		n++;
	}
	return n;
}

/* Queue the alerts (no lock held); un-fire the ones the queue refused. */
static void
queue_alerts(LgAccount *acct, const PendingAlert *p, int n)
{
	LgLimits *lim = acct->limits;

	for (int j = 0; j < n; j++)
	{
		LgBudget *b = &lim->budgets[p[j].budget];

		if (lg_alert_budget(lim->tenant,
							b,
							p[j].threshold,
							p[j].used,
							p[j].suspend,
							p[j].until))
			continue;
		LWLockAcquire(lg_shared->account_lock, LW_EXCLUSIVE);
		lg_budget_unfire(lg_budget_state(lim->tenant, b), p[j].threshold);
		LWLockRelease(lg_shared->account_lock);
	}
}

/*
 * Add what was spent to every budget (the amounts in each budget's unit,
 * from a usage, a cost and a number of requests) and queue the alerts.
 */
static int
settle(LgAccount     *acct,
	   const LgUsage *usage,
	   int64          cost,
	   int            requests,
	   bool           release)
{
	LgLimits    *lim = acct->limits;
	PendingAlert pending[MAX_PENDING];
	int          n = 0;

	LWLockAcquire(lg_shared->account_lock, LW_EXCLUSIVE);
	for (int i = 0; i < lim->nbudgets; i++)
	{
		LgBudget      *b = &lim->budgets[i];
		LgBudgetState *s = lg_budget_state(lim->tenant, b);

		if (s == NULL)
			continue;
		lg_budget_settle(s,
						 b,
						 b->unit == LG_UNIT_REQUESTS
							 ? requests
							 : lg_budget_measure(b, usage, cost));
		n = collect_crossed(acct, i, s, pending, n);
		if (release)
			lg_budget_release(s, b);
	}
	if (release)
		for (int i = 0; i < lim->nrates; i++)
			lg_quota_give_back(&lim->rates[i], lim->tenant, acct->tokens_used);
	LWLockRelease(lg_shared->account_lock);
	queue_alerts(acct, pending, n);
	return n;
}

/*
 * Hold each budget's shortfall to the estimates just computed, if all fit
 * (allow budgets always do, flagging the call); else *full is the budget
 * without room and nothing is held.
 */
static bool
top_up(LgAccount *acct, int *full)
{
	LgLimits *lim = acct->limits;
	bool      fits = true;

	LWLockAcquire(lg_shared->account_lock, LW_EXCLUSIVE);
	for (int i = 0; i < lim->nbudgets && fits; i++)
	{
		LgBudget      *b = &lim->budgets[i];
		LgBudgetState *s = lg_budget_state(lim->tenant, b);
		int64          extra = b->estimate - b->held;

		if (s == NULL || extra <= 0 || lg_budget_fits(s, b, extra))
			continue;
		if (b->at_limit == LG_AT_LIMIT_ALLOW)
			acct->over_budget = true;
		else
		{
			fits = false;
			*full = i;
		}
	}
	for (int i = 0; i < lim->nbudgets && fits; i++)
	{
		LgBudget      *b = &lim->budgets[i];
		LgBudgetState *s = lg_budget_state(lim->tenant, b);

		if (s != NULL && b->estimate > b->held)
			lg_budget_hold(s, b, b->estimate - b->held);
	}
	LWLockRelease(lg_shared->account_lock);
	return fits;
}

/*
 * Before an attempt: the reservation tops up to this deployment's worst
 * case.  The first attempt has it already (no lock taken then); later ones
 * need the room again.
 */
bool
lg_account_attempt_begin(LgAccount          *acct,
						 const LgDeployment *dep,
						 const char        **why)
{
	LgLimits *lim;
	bool      short_of = false;
	int       full = -1;

	if (acct == NULL)
		return true;
	lim = acct->limits;
	for (int i = 0; i < lim->nbudgets; i++)
	{
		LgBudget *b = &lim->budgets[i];

		b->estimate = lg_account_estimate(acct, b, dep);
		short_of |= b->estimate > b->held;
	}
	if (short_of && !top_up(acct, &full))
	{
		*why = psprintf("the %s %s budget has no room left for another "
						"attempt",
						lg_period_name(lim->budgets[full].period),
						lim->budgets[full].unit_name);
		return false;
	}
	memset(&acct->in_flight_floor, 0, sizeof(LgUsage));
	acct->in_flight_floor.input_tokens = acct->prompt_tokens;
	acct->in_flight_price = dep->price;
	return true;
}

/* The request is leaving: it may cost money from now on. */
void
lg_account_attempt_sent(LgAccount *acct)
{
	if (acct == NULL)
		return;
	acct->sent = true;
	acct->in_flight = true;
}

/* An attempt is over: settle its real cost. */
void
lg_account_attempt_end(LgAccount *acct, const LgAttempt *a)
{
	if (acct == NULL)
		return;
	acct->in_flight = false;
	acct->tokens_used +=
		a->reply.usage.input_tokens + a->reply.usage.output_tokens;
	settle(acct, &a->reply.usage, a->cost_picousd, 0, false);
}

/* The cache answered: a request, at no cost. */
void
lg_account_cache_hit(LgAccount *acct)
{
	if (acct != NULL)
		acct->sent = true;
}

/* The call is over: count the request, give back what is left. */
void
lg_account_finish(LgAccount *acct)
{
	LgUsage none = {0};

	if (acct == NULL || !acct->active)
		return;
	settle(acct, &none, 0, acct->sent ? 1 : 0, true);
	untrack(acct);
}

/*
 * The call ended in an error, a cancel or the backend's exit: an attempt in
 * flight costs its prompt (as its ledger row will say), then finish.  Called
 * from error paths and callbacks: takes locks, raises nothing.
 */
void
lg_account_abort(LgAccount *acct)
{
	if (acct == NULL || !acct->active)
		return;
	/* an error thrown with the lock held must not deadlock us here */
	if (LWLockHeldByMe(lg_shared->account_lock))
		LWLockRelease(lg_shared->account_lock);
	if (acct->in_flight)
	{
		LgUsage floor = acct->in_flight_floor;
		int64   cost = 0;

		acct->in_flight = false;
		acct->tokens_used += floor.input_tokens;
		/* prices are bounded: this product cannot overflow for a prompt */
		cost = floor.input_tokens * acct->in_flight_price.input;
		settle(acct, &floor, cost, 0, false);
	}
	lg_account_finish(acct);
}

/*
 * Fire the thresholds the budgets reached without a call (an amount
 * lowered, say): a settlement of nothing.  Returns the alerts queued.
 */
int
lg_account_sweep(LgLimits *limits)
{
	LgAccount acct;
	LgUsage   none = {0};

	memset(&acct, 0, sizeof(acct));
	acct.limits = limits;
	return settle(&acct, &none, 0, 0, false);
}
