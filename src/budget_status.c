/*
 * budget_status.c — llm_budget_status(tenant): where each budget stands.
 *
 *   {"tenant", "currency", "suspended", "suspended_until", "suspended_reason",
 *    "budgets": [{"budget_id", "kind", "scope", "agent", "unit", "period",
 *                 "limit", "used", "reserved", "remaining", "percent",
 *                 "period_start", "period_end", "projection",
 *                 "projected_percent", "state", "at_limit",
 *                 "downgrade_model", "thresholds"}]}
 *
 * "used" is what settled calls spent this period, "reserved" what calls in
 * flight hold; "projection" is used at the current pace until the period
 * ends.  state: suspended (the tenant is), exceeded (used >= limit), warning
 * (the lowest threshold is reached), ok.  The daily quotas (rpd, tpd) are
 * listed too, kind "requests_per_day" / "tokens_per_day".  Members of the
 * tenant and administrators may ask.
 */
#include "account.h"

#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(llm_budget_status);

static void
time_field(StringInfo b, bool *first, const char *name, TimestampTz t)
{
	lg_jstr(b, first, name, t ? timestamptz_to_str(t) : NULL);
}

/* An amount in the budget's unit as a JSON number. */
static void
amount_field(
	StringInfo b, bool *first, const char *name, const LgBudget *bu, int64 v)
{
	lg_jkey(b, first, name);
	if (bu->unit == LG_UNIT_USD || bu->unit == LG_UNIT_CURRENCY)
	{
		if (v < 0)
			appendStringInfoChar(b, '-');
		lg_append_picousd(b, v < 0 ? -v : v);
	}
	else
		appendStringInfo(b, INT64_FORMAT, v);
}

static const char *
kind_name(const LgBudget *bu)
{
	return bu->id == LG_QUOTA_RPD_ID   ? "requests_per_day"
		   : bu->id == LG_QUOTA_TPD_ID ? "tokens_per_day"
									   : "budget";
}

static const char *
state_name(const LgBudget *bu, int64 used, bool suspended)
{
	if (suspended)
		return "suspended";
	if (used >= bu->limit)
		return "exceeded";
	if (bu->nthresholds > 0 && (double) used >= (double) bu->limit *
													bu->thresholds[0] /
													LG_THRESHOLD_ONE)
		return "warning";
	return "ok";
}

static void
append_budget(StringInfo      b,
			  const LgLimits *lim,
			  const LgBudget *bu,
			  bool            tenant_suspended)
{
	LgBudgetSnapshot snap;
	bool             first = true;
	TimestampTz      now = GetCurrentTimestamp();
	double           elapsed;
	double           length = (double) (bu->period_end - bu->period_start);
	int64            projection;

	lg_budget_snapshot(lim->tenant, bu, &snap);
	elapsed = (double) (now - bu->period_start);
	projection = elapsed > 0 ? (int64) ((double) snap.spent * length / elapsed)
							 : snap.spent;
	appendStringInfoChar(b, '{');
	lg_jkey(b, &first, "budget_id");
	if (bu->id > 0)
		appendStringInfo(b, INT64_FORMAT, bu->id);
	else
		appendStringInfoString(b, "null");
	lg_jstr(b, &first, "kind", kind_name(bu));
	lg_jstr(b,
			&first,
			"scope",
			bu->agent       ? "agent"
			: bu->from_plan ? "plan"
							: "tenant");
	lg_jstr(b, &first, "agent", bu->agent);
	lg_jstr(b, &first, "unit", bu->unit_name);
	lg_jstr(b, &first, "period", lg_period_name(bu->period));
	amount_field(b, &first, "limit", bu, bu->limit);
	amount_field(b, &first, "used", bu, snap.spent);
	amount_field(b, &first, "reserved", bu, snap.reserved);
	amount_field(b,
				 &first,
				 "remaining",
				 bu,
				 Max(bu->limit - snap.spent - snap.reserved, 0));
	lg_jkey(b, &first, "percent");
	appendStringInfo(b,
					 "%.2f",
					 bu->limit > 0 ? 100.0 * snap.spent / bu->limit : 0);
	time_field(b, &first, "period_start", bu->period_start);
	time_field(b, &first, "period_end", bu->period_end);
	amount_field(b, &first, "projection", bu, projection);
	lg_jkey(b, &first, "projected_percent");
	appendStringInfo(b,
					 "%.2f",
					 bu->limit > 0 ? 100.0 * projection / bu->limit : 0);
	lg_jstr(b,
			&first,
			"state",
			state_name(bu,
					   snap.spent,
					   (tenant_suspended ||
						(snap.suspended &&
						 snap.suspended_at > lim->lifted_at)) &&
						   bu->agent == NULL));
	lg_jstr(b,
			&first,
			"at_limit",
			bu->at_limit == LG_AT_LIMIT_ALLOW       ? "allow"
			: bu->at_limit == LG_AT_LIMIT_DOWNGRADE ? "downgrade"
													: "block");
	lg_jstr(b, &first, "downgrade_model", bu->downgrade_model);
	lg_jkey(b, &first, "thresholds");
	appendStringInfoChar(b, '[');
	for (int i = 0; i < bu->nthresholds; i++)
		appendStringInfo(b,
						 "%s%g",
						 i ? ", " : "",
						 bu->thresholds[i] / 10000.0);
	appendStringInfoString(b, "]}");
}

/* llm_budget_status(tenant text) RETURNS jsonb */
Datum
llm_budget_status(PG_FUNCTION_ARGS)
{
	LgTenant       tenant;
	LgLimits       lim;
	StringInfoData b;
	bool           first = true;
	bool           suspended;

	lg_shmem_require();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_NOT_FOUND),
				 errmsg("tenant must not be NULL")));
	memset(&tenant, 0, sizeof(tenant));
	lg_catalog_tenant_limits(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							 &tenant,
							 &lim);
	suspended = tenant.suspended_until > GetCurrentTimestamp();

	initStringInfo(&b);
	appendStringInfoChar(&b, '{');
	lg_jstr(&b, &first, "tenant", tenant.tenant);
	lg_jstr(&b, &first, "currency", tenant.currency);
	lg_jkey(&b, &first, "suspended");
	appendStringInfoString(&b, suspended ? "true" : "false");
	time_field(&b,
			   &first,
			   "suspended_until",
			   suspended ? tenant.suspended_until : 0);
	lg_jstr(&b,
			&first,
			"suspended_reason",
			suspended ? tenant.suspended_reason : NULL);
	lg_jkey(&b, &first, "budgets");
	appendStringInfoChar(&b, '[');
	for (int i = 0; i < lim.nbudgets; i++)
	{
		if (i > 0)
			appendStringInfoString(&b, ", ");
		append_budget(&b, &lim, &lim.budgets[i], suspended);
	}
	appendStringInfoString(&b, "]}");
	PG_RETURN_JSONB_P(lg_jfinish(&b));
}
