/*
 * budget.c — budget counters in shared memory.
 *
 * One LgBudgetState per budget and tenant (plan budgets apply to each of
 * their tenants apart; agent budgets are keyed by the agent too), holding
 * for the current period what was spent (settled calls), what calls in
 * flight hold in reserve, the thresholds that fired, and a suspension.
 *
 * A state is built from the ledger the first time a budget is used after a
 * start, and again when its period turns over (account_catalog.c runs the
 * query; lg_budget_install puts the result in place).  From then on calls
 * move it: admission holds their worst case, each attempt settles its real
 * cost, the end of the call gives the rest back (account.c).
 *
 * Everything here runs with LgShared.account_lock held, except the entry
 * points that take it themselves (ready, install, snapshot).
 */
#include <math.h>

#include "account.h"
#include "shmem.h"

#include "common/int.h"
#include "storage/shmem.h"
#include "utils/formatting.h"

typedef struct LgBudgetKey
{
	Oid   dboid;
	int64 id;
	char  tenant[LG_LABEL_MAX];
	char  agent[LG_LABEL_MAX];
} LgBudgetKey;

struct LgBudgetState
{
	LgBudgetKey key;
	uint8       unit;
	TimestampTz period_start;
	TimestampTz period_end;
	int64       spent;
	int64       reserved;
	int32       fired[LG_MAX_THRESHOLDS];
	int         nfired;
	TimestampTz suspended_at; /* 0: this budget suspends no one */
	TimestampTz suspended_until;
	TimestampTz last_used;
	uint64      changes; /* every hold, settle and release */
};

/* An idle state is dropped to make room after this long. */
#define IDLE_EVICT_US (INT64CONST(86400) * USECS_PER_SEC)

static HTAB *budget_states = NULL;

static long
max_states(void)
{
	return (long) lg_max_tenants * 4;
}

Size
lg_budget_shmem_size(void)
{
	return hash_estimate_size(max_states(), sizeof(LgBudgetState));
}

void
lg_budget_shmem_attach(void)
{
	HASHCTL info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LgBudgetKey);
	info.entrysize = sizeof(LgBudgetState);
	budget_states = ShmemInitHash("llm_gateway budgets",
								  max_states(),
								  max_states(),
								  &info,
								  HASH_ELEM | HASH_BLOBS);
}

static void
make_key(LgBudgetKey *key, const char *tenant, const LgBudget *b)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->id = b->id;
	strlcpy(key->tenant, tenant, sizeof(key->tenant));
	strlcpy(key->agent, b->agent ? b->agent : "", sizeof(key->agent));
}

static LgBudgetState *
find(const char *tenant, const LgBudget *b)
{
	LgBudgetKey key;

	make_key(&key, tenant, b);
	return hash_search(budget_states, &key, HASH_FIND, NULL);
}

/* Drop states nobody uses: no reservation, no suspension, long idle. */
static int
evict_idle(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LgBudgetState  *s;
	int             n = 0;

	hash_seq_init(&seq, budget_states);
	while ((s = hash_seq_search(&seq)) != NULL)
	{
		if (s->reserved != 0 || s->suspended_at != 0 ||
			(s->period_end > now && now - s->last_used < IDLE_EVICT_US))
			continue;
		(void) hash_search(budget_states, &s->key, HASH_REMOVE, NULL);
		n++;
	}
	return n;
}

/* ---- entry points that lock ---- */

/* Is the state in place for the budget's current period? */
bool
lg_budget_ready(const char *tenant, const LgBudget *b)
{
	LgBudgetState *s;
	bool           ready;

	LWLockAcquire(lg_shared->account_lock, LW_SHARED);
	s = find(tenant, b);
	ready =
		s != NULL && s->unit == b->unit && s->period_start >= b->period_start;
	LWLockRelease(lg_shared->account_lock);
	return ready;
}

/*
 * Put the state of the budget's current period in place: spent as the
 * ledger says, and the thresholds that already fired.  A state of an
 * earlier period turns over (calls in flight keep their reservations); one
 * already current (another backend was quicker) is left alone.
 */
void
lg_budget_install(const char     *tenant,
				  const LgBudget *b,
				  int64           spent,
				  const int32    *fired,
				  int             nfired)
{
	LgBudgetKey    key;
	LgBudgetState *s;
	bool           found;
	TimestampTz    now = GetCurrentTimestamp();

	make_key(&key, tenant, b);
	LWLockAcquire(lg_shared->account_lock, LW_EXCLUSIVE);
	s = hash_search(budget_states, &key, HASH_ENTER_NULL, &found);
	if (s == NULL && evict_idle(now) > 0)
		s = hash_search(budget_states, &key, HASH_ENTER_NULL, &found);
	if (s == NULL)
	{
		LWLockRelease(lg_shared->account_lock);
		ereport(ERROR,
				(errcode(ERRCODE_LG_ACCOUNT_MEM_FULL),
				 errmsg("too many budgets in use to track them all"),
				 errhint("Raise llm_gateway.max_tenants (a restart is "
						 "needed).")));
	}
	if (!found || s->unit != b->unit || s->period_start < b->period_start)
	{
		if (!found || s->unit != b->unit)
			s->reserved = 0;
		/* a suspension until the end of its period ends with it */
		if (!found || s->suspended_until <= b->period_start)
			s->suspended_at = s->suspended_until = 0;
		s->unit = (uint8) b->unit;
		s->period_start = b->period_start;
		s->period_end = b->period_end;
		s->spent = spent;
		s->nfired = Min(nfired, LG_MAX_THRESHOLDS);
		memcpy(s->fired, fired, sizeof(int32) * s->nfired);
	}
	s->last_used = now;
	LWLockRelease(lg_shared->account_lock);
}

void
lg_budget_snapshot(const char       *tenant,
				   const LgBudget   *b,
				   LgBudgetSnapshot *out)
{
	LgBudgetState *s;

	memset(out, 0, sizeof(*out));
	LWLockAcquire(lg_shared->account_lock, LW_SHARED);
	s = find(tenant, b);
	if (s != NULL && s->unit == b->unit)
	{
		out->spent = s->spent;
		out->reserved = s->reserved;
		out->suspended = s->suspended_at != 0;
		out->suspended_at = s->suspended_at;
		out->suspended_until = s->suspended_until;
	}
	LWLockRelease(lg_shared->account_lock);
}

/* ---- with account_lock held ---- */

/* The state of a budget; one that vanished starts again from zero. */
LgBudgetState *
lg_budget_state(const char *tenant, const LgBudget *b)
{
	LgBudgetKey    key;
	LgBudgetState *s;
	bool           found;

	make_key(&key, tenant, b);
	s = hash_search(budget_states, &key, HASH_ENTER_NULL, &found);
	if (s == NULL)
		return NULL;
	if (!found || s->unit != b->unit)
	{
		memset((char *) s + sizeof(LgBudgetKey),
			   0,
			   sizeof(LgBudgetState) - sizeof(LgBudgetKey));
		s->unit = (uint8) b->unit;
		s->period_start = b->period_start;
		s->period_end = b->period_end;
	}
	else if (s->period_start < b->period_start)
	{
		/* the period turned over since the catalog looked */
		s->period_start = b->period_start;
		s->period_end = b->period_end;
		s->spent = 0;
		s->nfired = 0;
		if (s->suspended_until <= b->period_start)
			s->suspended_at = s->suspended_until = 0;
	}
	s->last_used = GetCurrentTimestamp();
	return s;
}

/* Does a suspension by this budget hold (one lifted after it does not)? */
bool
lg_budget_suspended(LgBudgetState *s, TimestampTz lifted_at)
{
	if (s->suspended_at == 0)
		return false;
	if (lifted_at >= s->suspended_at ||
		s->suspended_until <= GetCurrentTimestamp())
	{
		s->suspended_at = s->suspended_until = 0;
		return false;
	}
	return true;
}

/* spent + reserved + extra <= limit */
bool
lg_budget_fits(const LgBudgetState *s, const LgBudget *b, int64 extra)
{
	int64 total;

	return !pg_add_s64_overflow(s->spent, s->reserved, &total) &&
		   !pg_add_s64_overflow(total, extra, &total) && total <= b->limit;
}

void
lg_budget_hold(LgBudgetState *s, LgBudget *b, int64 amount)
{
	s->reserved += amount;
	b->held += amount;
	s->changes++;
}

/*
 * Settle: add what was spent, and release as much of the call's
 * reservation (never more than it holds).
 */
void
lg_budget_settle(LgBudgetState *s, LgBudget *b, int64 spent)
{
	int64 release = Min(Max(spent, 0), b->held);

	if (pg_add_s64_overflow(s->spent, Max(spent, 0), &s->spent))
		s->spent = PG_INT64_MAX;
	s->reserved -= release;
	b->held -= release;
	s->changes++;
}

/* Give back whatever the call still holds. */
void
lg_budget_release(LgBudgetState *s, LgBudget *b)
{
	s->reserved -= b->held;
	b->held = 0;
	s->changes++;
}

static bool
has_fired(const LgBudgetState *s, int32 threshold)
{
	for (int i = 0; i < s->nfired; i++)
		if (s->fired[i] == threshold)
			return true;
	return false;
}

/*
 * The thresholds reached and not fired yet this period: marked fired here,
 * so that exactly one backend reports each.  *suspend_now: the limit was
 * reached and the budget suspends the tenant.
 */
int
lg_budget_crossed(LgBudgetState  *s,
				  const LgBudget *b,
				  int32          *crossed,
				  bool           *suspend_now)
{
	int n = 0;

	*suspend_now = false;
	for (int i = 0; i < b->nthresholds; i++)
	{
		int32 t = b->thresholds[i];

		if ((double) s->spent < (double) b->limit * t / LG_THRESHOLD_ONE ||
			has_fired(s, t) || s->nfired >= LG_MAX_THRESHOLDS)
			continue;
		s->fired[s->nfired++] = t;
		crossed[n++] = t;
		if (t >= LG_THRESHOLD_ONE && b->suspend != LG_SUSPEND_NEVER &&
			s->suspended_at == 0)
		{
			s->suspended_at = GetCurrentTimestamp();
			s->suspended_until =
				b->suspend == LG_SUSPEND_PERIOD ? s->period_end : DT_NOEND;
			*suspend_now = true;
		}
	}
	return n;
}

/* An alert that could not be queued: let the next settlement retry it. */
void
lg_budget_unfire(LgBudgetState *s, int32 threshold)
{
	for (int i = 0; i < s->nfired; i++)
		if (s->fired[i] == threshold)
		{
			s->fired[i] = s->fired[--s->nfired];
			return;
		}
}

void
lg_budget_state_values(const LgBudgetState *s,
					   int64               *spent,
					   int64               *reserved,
					   TimestampTz         *suspended_until)
{
	*spent = s->spent;
	*reserved = s->reserved;
	*suspended_until = s->suspended_until;
}

/* ---- reconciliation with the ledger (duties.c) ---- */

/*
 * Is the budget's counter quiet — loaded, current, nothing reserved?  Then
 * *changes says how many times it moved, to tell later whether it did.
 */
bool
lg_budget_quiet(const char *tenant, const LgBudget *b, uint64 *changes)
{
	LgBudgetState *s;
	bool           quiet;

	LWLockAcquire(lg_shared->account_lock, LW_SHARED);
	s = find(tenant, b);
	quiet = s != NULL && s->unit == b->unit &&
			s->period_start == b->period_start && s->reserved == 0;
	*changes = quiet ? s->changes : 0;
	LWLockRelease(lg_shared->account_lock);
	return quiet;
}

/*
 * Set a quiet counter to what the ledger says, unless it moved since
 * lg_budget_quiet (a call in between may not be in that ledger sum yet).
 * Returns true when the counter was corrected.
 */
bool
lg_budget_reconcile(const char     *tenant,
					const LgBudget *b,
					uint64          changes,
					int64           ledger_spent)
{
	LgBudgetState *s;
	bool           corrected = false;

	LWLockAcquire(lg_shared->account_lock, LW_EXCLUSIVE);
	s = find(tenant, b);
	if (s != NULL && s->changes == changes && s->reserved == 0 &&
		s->period_start == b->period_start && s->spent != ledger_spent)
	{
		s->spent = ledger_spent;
		s->changes++;
		corrected = true;
	}
	LWLockRelease(lg_shared->account_lock);
	return corrected;
}

/* ---- units ---- */

/* What an attempt adds to a budget, in its unit (requests: see account.c). */
int64
lg_budget_measure(const LgBudget *b, const LgUsage *usage, int64 cost_picousd)
{
	switch (b->unit)
	{
		case LG_UNIT_USD:
			return cost_picousd;
		case LG_UNIT_CURRENCY:
			return (int64) llround((double) cost_picousd * b->rate);
		case LG_UNIT_TOKENS:
			return usage->input_tokens + usage->output_tokens;
		case LG_UNIT_REQUESTS:
			return 0;
	}
	return 0;
}

/* An amount in the budget's unit, for messages: "1.25 USD", "300 tokens". */
char *
lg_budget_format(const LgBudget *b, int64 amount)
{
	StringInfoData s;

	initStringInfo(&s);
	if (b->unit == LG_UNIT_USD || b->unit == LG_UNIT_CURRENCY)
	{
		char *upper = asc_toupper(b->unit_name, strlen(b->unit_name));

		lg_append_picousd(&s, Max(amount, 0));
		appendStringInfo(&s, " %s", upper);
	}
	else
		appendStringInfo(&s, INT64_FORMAT " %s", amount, b->unit_name);
	return s.data;
}

const char *
lg_period_name(LgPeriod period)
{
	return period == LG_PERIOD_DAILY    ? "daily"
		   : period == LG_PERIOD_WEEKLY ? "weekly"
										: "monthly";
}
