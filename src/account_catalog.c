/*
 * account_catalog.c — the quotas and budgets that apply to a call, and
 * their counters made ready for the current period.
 *
 * Applicable: the tenant's budgets, those of the call's agent, and the
 * plan's budgets for which the tenant has no budget of its own with the
 * same unit and period; the tenant's (or its plan's) and the agent's rpd
 * and tpd as daily budgets of requests and tokens that always block; their
 * rpm, tpm and max_concurrency as rate quotas (quota.c).
 *
 * A counter that is not in shared memory yet (first use since the start, a
 * new budget) or whose period has turned over is computed from the ledger:
 * what the tenant (or agent) spent in the period so far, and which
 * thresholds already fired (the alerts table).  Runs inside the catalog's
 * SPI connection, as the extension's owner (catalog.c).
 */
#include "account.h"
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "utils/timestamp.h"

static const char *const budgets_sql =
	"SELECT b.id, b.agent, b.unit, b.period,"
	"       (CASE WHEN b.unit IN ('tokens', 'requests') THEN b.amount"
	"             ELSE b.amount * 1000000000000 END)::int8,"
	"       (CASE WHEN b.unit IN ('usd', 'tokens', 'requests') THEN 1"
	"             ELSE r.rate END)::float8,"
	"       array_to_string(ARRAY(SELECT round(t * 10000)::int4"
	"                               FROM unnest(b.thresholds) t ORDER BY 1), "
	"','),"
	"       b.threshold_style = 'remaining', b.at_limit, b.downgrade_model,"
	"       b.suspend, pb.s AT TIME ZONE $2, (pb.s + pb.len) AT TIME ZONE $2,"
	"       b.plan IS NOT NULL"
	"  FROM llm_gateway.budgets b"
	"  LEFT JOIN llm_gateway.exchange_rates r ON r.currency = upper(b.unit)"
	/* the current period in the tenant's zone, as llm_gateway.period_bounds() */
	"  CROSS JOIN LATERAL (SELECT date_trunc(CASE b.period"
	"                                         WHEN 'daily' THEN 'day'"
	"                                         WHEN 'weekly' THEN 'week'"
	"                                         ELSE 'month' END,"
	"                                       clock_timestamp() AT TIME ZONE "
	"$2) AS s,"
	"                             CASE b.period WHEN 'daily' THEN interval '1 "
	"day'"
	"                                           WHEN 'weekly' THEN interval "
	"'1 week'"
	"                                           ELSE interval '1 month' END "
	"AS len) pb"
	" WHERE b.enabled"
	"   AND ((b.tenant = $1 AND (b.agent IS NULL OR b.agent = $3 OR $5))"
	"        OR (b.plan = $4 AND NOT EXISTS ("
	"              SELECT 1 FROM llm_gateway.budgets o"
	"               WHERE o.tenant = $1 AND o.agent IS NULL AND o.enabled"
	"                 AND o.unit = b.unit AND o.period = b.period)))"
	" ORDER BY b.agent NULLS FIRST, b.id";

/* What the tenant (or agent) spent in [start, end), in the budget's unit. */
static const char *const spent_sql =
	"SELECT CASE $5"
	"  WHEN 'usd' THEN (coalesce(sum(u.cost_usd), 0) * 1000000000000)::int8"
	"  WHEN 'tokens' THEN coalesce(sum(u.input_tokens + u.output_tokens), "
	"0)::int8"
	"  WHEN 'requests' THEN count(DISTINCT u.request_id)"
	"  ELSE (coalesce(sum(CASE WHEN u.currency = upper($5) THEN u.cost_local"
	"                          ELSE u.cost_usd * $6 END), 0)"
	"        * 1000000000000)::int8 END,"
	"  array_to_string(ARRAY(SELECT round(a.threshold * 10000)::int4"
	"                          FROM llm_gateway.alerts a"
	"                         WHERE a.budget_id = $7 AND a.tenant = $1"
	"                           AND a.period_start = $3), ',')"
	"  FROM llm_gateway.usage u"
	" WHERE u.tenant = $1 AND ($2 = '' OR u.agent = $2)"
	"   AND u.created_at >= $3 AND u.created_at < $4";

static SPIPlanPtr budgets_plan = NULL;
static SPIPlanPtr spent_plan = NULL;

static int
parse_ints(const char *list, int32 *out, int max)
{
	int   n = 0;
	char *end;

	while (list && *list && n < max)
	{
		out[n++] = (int32) strtol(list, &end, 10);
		list = (*end == ',') ? end + 1 : end;
		if (end == list && *end != '\0')
			break;
	}
	return n;
}

static LgUnit
unit_of(const char *name)
{
	if (strcmp(name, "usd") == 0)
		return LG_UNIT_USD;
	if (strcmp(name, "tokens") == 0)
		return LG_UNIT_TOKENS;
	if (strcmp(name, "requests") == 0)
		return LG_UNIT_REQUESTS;
	return LG_UNIT_CURRENCY;
}

static LgPeriod
period_of(const char *name)
{
	return strcmp(name, "daily") == 0    ? LG_PERIOD_DAILY
		   : strcmp(name, "weekly") == 0 ? LG_PERIOD_WEEKLY
										 : LG_PERIOD_MONTHLY;
}

static void
read_budget(LgBudget *b, int row, const char *tenant, MemoryContext cxt)
{
	bool  isnull;
	char *text;
	Datum rate;
	char *fallback;

	memset(b, 0, sizeof(*b));
	b->id = lg_spi_int64(row, 1);
	b->agent = lg_spi_text(row, 2, cxt);
	strlcpy(b->unit_name, lg_spi_text(row, 3, cxt), sizeof(b->unit_name));
	b->unit = unit_of(b->unit_name);
	b->period = period_of(lg_spi_text(row, 4, cxt));
	b->limit = lg_spi_int64(row, 5);
	rate = lg_spi_col(row, 6, &isnull);
	fallback = isnull ? lg_fallback_rate(b->unit_name) : NULL;
	if (isnull && fallback == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_CONFIG),
				 errmsg("there is no exchange rate for the %s budget of "
						"tenant "
						"\"%s\"",
						b->unit_name,
						tenant),
				 errhint("Set one with llm_exchange_rate_set() or "
						 "llm_gateway.fallback_rates.")));
	b->rate = isnull ? strtod(fallback, NULL) : DatumGetFloat8(rate);
	text = lg_spi_text(row, 7, cxt);
	b->nthresholds = parse_ints(text, b->thresholds, LG_MAX_THRESHOLDS);
	b->remaining_style = lg_spi_bool(row, 8);
	text = lg_spi_text(row, 9, cxt);
	b->at_limit = strcmp(text, "allow") == 0       ? LG_AT_LIMIT_ALLOW
				  : strcmp(text, "downgrade") == 0 ? LG_AT_LIMIT_DOWNGRADE
												   : LG_AT_LIMIT_BLOCK;
	b->downgrade_model = lg_spi_text(row, 10, cxt);
	text = lg_spi_text(row, 11, cxt);
	b->suspend = strcmp(text, "period") == 0   ? LG_SUSPEND_PERIOD
				 : strcmp(text, "manual") == 0 ? LG_SUSPEND_MANUAL
											   : LG_SUSPEND_NEVER;
	b->period_start = DatumGetTimestampTz(lg_spi_col(row, 12, &isnull));
	b->period_end = DatumGetTimestampTz(lg_spi_col(row, 13, &isnull));
	b->from_plan = lg_spi_bool(row, 14);
}

/* A daily quota (rpd, tpd) as a budget that always blocks. */
static void
daily_quota(LgBudget             *b,
			int64                 id,
			int64                 limit,
			const char           *agent,
			const LgLimitsSource *src)
{
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->agent = agent;
	b->unit = id == LG_QUOTA_RPD_ID ? LG_UNIT_REQUESTS : LG_UNIT_TOKENS;
	strlcpy(b->unit_name,
			id == LG_QUOTA_RPD_ID ? "requests" : "tokens",
			sizeof(b->unit_name));
	b->period = LG_PERIOD_DAILY;
	b->limit = limit;
	b->rate = 1;
	b->at_limit = LG_AT_LIMIT_BLOCK;
	b->period_start = src->day_start;
	b->period_end = src->day_end;
}

/* What the ledger says of b: spent this period, and the thresholds fired. */
static int64
ledger_spent(const char *tenant, const LgBudget *b, int32 *fired, int *nfired)
{
	Oid   types[7] = {TEXTOID,
					  TEXTOID,
					  TIMESTAMPTZOID,
					  TIMESTAMPTZOID,
					  TEXTOID,
					  FLOAT8OID,
					  INT8OID};
	Datum args[7];

	args[0] = CStringGetTextDatum(tenant);
	args[1] = CStringGetTextDatum(b->agent ? b->agent : "");
	args[2] = TimestampTzGetDatum(b->period_start);
	args[3] = TimestampTzGetDatum(b->period_end);
	args[4] = CStringGetTextDatum(b->unit_name);
	args[5] = Float8GetDatum(b->rate);
	args[6] = Int64GetDatum(b->id);
	/* not read-only: a fresh snapshot, with whatever committed just now */
	if (SPI_execute_plan(lg_spi_prepare_once(&spent_plan, spent_sql, 7, types),
						 args,
						 NULL,
						 false,
						 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the ledger for a budget");
	*nfired = parse_ints(lg_spi_text(0, 2, CurrentMemoryContext),
						 fired,
						 LG_MAX_THRESHOLDS);
	return lg_spi_int64(0, 1);
}

/* Build the counter of b from the ledger unless it is current already. */
static void
make_ready(const char *tenant, const LgBudget *b)
{
	int32 fired[LG_MAX_THRESHOLDS];
	int   nfired;
	int64 spent;

	if (lg_budget_ready(tenant, b))
		return;
	spent = ledger_spent(tenant, b, fired, &nfired);
	lg_budget_install(tenant, b, spent, fired, nfired);
}

/*
 * Set the quiet counters of these budgets to what the ledger says: those
 * with nothing reserved, no ledger row of the tenant still waiting in the
 * spend queue, and no call between the look and the fix.  Returns how many
 * were corrected (each is logged: a counter that drifted is news).
 */
int
lg_budgets_reconcile(LgLimits *lim)
{
	int n = 0;

	if (lg_spend_pending_for(lim->tenant))
		return 0;
	for (int i = 0; i < lim->nbudgets; i++)
	{
		const LgBudget *b = &lim->budgets[i];
		int32           fired[LG_MAX_THRESHOLDS];
		int             nfired;
		uint64          changes;
		int64           spent;

		if (b->id < 0 || !lg_budget_quiet(lim->tenant, b, &changes))
			continue;
		spent = ledger_spent(lim->tenant, b, fired, &nfired);
		if (!lg_spend_pending_for(lim->tenant) &&
			lg_budget_reconcile(lim->tenant, b, changes, spent))
		{
			ereport(LOG,
					(errmsg("llm_gateway reconciled the %s %s budget of "
							"tenant \"%s\" with the ledger: %s",
							lg_period_name(b->period),
							b->unit_name,
							lim->tenant,
							lg_budget_format(b, spent))));
			n++;
		}
	}
	return n;
}

static void
add_rate_quota(LgLimits *lim, const char *agent, const LgQuotaConfig *q)
{
	LgRateQuota *r;

	if (q->rpm <= 0 && q->tpm <= 0 && q->max_concurrency <= 0)
		return;
	r = &lim->rates[lim->nrates++];
	memset(r, 0, sizeof(*r));
	r->agent = agent;
	r->rpm = q->rpm;
	r->tpm = q->tpm;
	r->max_concurrency = q->max_concurrency;
}

/*
 * Fill lim for a call of src->tenant (and src->agent, or every agent when
 * src->all_agents), in cxt, with every counter ready.
 */
void
lg_limits_load(LgLimits *lim, const LgLimitsSource *src, MemoryContext cxt)
{
	Oid   types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum args[5];
	int   n;
	int   k = 0;
	const LgQuotaConfig *qs[2] = {&src->tenant_quota, &src->agent_quota};

	memset(lim, 0, sizeof(*lim));
	lim->tenant = src->tenant;
	lim->lifted_at = src->lifted_at;
	args[0] = CStringGetTextDatum(src->tenant);
	args[1] = CStringGetTextDatum(src->timezone);
	args[2] = CStringGetTextDatum(src->agent ? src->agent : "");
	args[3] = CStringGetTextDatum(src->plan ? src->plan : "");
	args[4] = BoolGetDatum(src->all_agents);
	n = 0;
	if (src->has_budgets) /* most calls: no second query */
	{
		lg_spi_select(lg_spi_prepare_once(&budgets_plan,
										  budgets_sql,
										  5,
										  types),
					  args);
		n = (int) SPI_processed;
	}
	lim->budgets = MemoryContextAllocZero(cxt, sizeof(LgBudget) * (n + 4));
	for (int i = 0; i < n; i++)
		read_budget(&lim->budgets[k++], i, src->tenant, cxt);
	for (int j = 0; j < 2; j++)
	{
		const char *agent = j == 0 ? NULL : src->agent;

		if (j == 1 && agent == NULL)
			break;
		if (qs[j]->rpd > 0)
			daily_quota(&lim->budgets[k++],
						LG_QUOTA_RPD_ID,
						qs[j]->rpd,
						agent,
						src);
		if (qs[j]->tpd > 0)
			daily_quota(&lim->budgets[k++],
						LG_QUOTA_TPD_ID,
						qs[j]->tpd,
						agent,
						src);
		add_rate_quota(lim, agent, qs[j]);
	}
	lim->nbudgets = k;
	lg_limits_make_ready(lim);
}

/* Are the counters of every budget in place for its current period? */
bool
lg_limits_ready(const LgLimits *lim)
{
	for (int i = 0; i < lim->nbudgets; i++)
		if (!lg_budget_ready(lim->tenant, &lim->budgets[i]))
			return false;
	return true;
}

/* Put them in place, from the ledger where needed (connected to SPI). */
void
lg_limits_make_ready(const LgLimits *lim)
{
	for (int i = 0; i < lim->nbudgets; i++)
		make_ready(lim->tenant, &lim->budgets[i]);
}
