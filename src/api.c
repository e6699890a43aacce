/*
 * api.c — the SQL-callable entry points llm_complete() and llm_chat().
 *
 * One call: validate the arguments, resolve the tenant (with the membership
 * check) and the plan (route, candidate deployments), answer from the cache
 * if it can, else let the router try the candidates, store a cacheable
 * answer, and return the result — or raise the error that says why no
 * provider answered.  Before any of that the call is admitted against its
 * tenant's and agent's quotas and budgets (account.c): refused, let
 * through over budget, or sent to a budget's downgrade model; whatever the
 * call reserved is settled on every path out, errors included.  Every attempt that sent a request holds a spend slot
 * from that moment (spend.c), so its ledger row survives a rollback, an
 * error, a cancel or the end of the backend.
 */
#include "account.h"

PG_FUNCTION_INFO_V1(llm_complete);
PG_FUNCTION_INFO_V1(llm_chat);

static void
check_enabled(void)
{
	if (!lg_enabled)
		ereport(ERROR,
				(errcode(ERRCODE_LG_GATEWAY_DISABLED),
				 errmsg("llm_gateway is disabled"),
				 errhint("A superuser can enable it with llm_gateway.enabled "
						 "= on.")));
}

/* max_tokens above what every candidate can answer is the caller's error. */
static void
check_max_tokens(const LgRequest *req, const LgPlan *plan)
{
	int32 largest = 0;

	if (req->opt.max_tokens == 0)
		return;
	for (int i = 0; i < plan->ncands; i++)
	{
		int32 limit = plan->cands[i].max_output_tokens;

		if (limit == 0 || limit >= req->opt.max_tokens)
			return;
		largest = Max(largest, limit);
	}
	ereport(ERROR,
			(errcode(ERRCODE_LG_INVALID_OPTIONS),
			 errmsg("max_tokens %d exceeds the limit of model \"%s\"",
					req->opt.max_tokens,
					plan->requested),
			 errdetail("The model answers with at most %d tokens.", largest)));
}

/* ---- failure ---- */

static void
raise_attempt_error(const LgAttempt *a)
{
	ereport(ERROR,
			(errcode(a->sqlstate),
			 errmsg_internal("%s", a->error),
			 a->detail ? errdetail_internal("%s", a->detail) : 0,
			 a->hint ? errhint("%s", a->hint) : 0));
}

static void
describe_route(StringInfo b, const LgRouteResult *r)
{
	for (int i = 0; i < r->nattempts; i++)
	{
		const LgAttempt *a = &r->attempts[i];

		appendStringInfo(b,
						 "%sAttempt %d, provider \"%s\" (%s): %s",
						 b->len ? " " : "",
						 a->number,
						 a->dep->provider.name,
						 a->dep->model,
						 a->error);
		appendStringInfoString(b,
							   a->detail ? psprintf(" (%s)", a->detail) : "");
		appendStringInfoChar(b, '.');
	}
	for (int i = 0; i < r->nskipped; i++)
		appendStringInfo(b,
						 "%sProvider \"%s\" (%s) skipped: %s.",
						 b->len ? " " : "",
						 r->skipped[i].dep->provider.name,
						 r->skipped[i].dep->model,
						 r->skipped[i].reason);
}

static int
distinct_deployments(const LgRouteResult *r)
{
	int n = 0;

	for (int i = 0; i < r->nattempts; i++)
	{
		bool seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = r->attempts[j].dep == r->attempts[i].dep;
		n += seen ? 0 : 1;
	}
	return n;
}

/*
 * No answer.  Nothing tried: LG031.  One deployment tried with nothing
 * else in reach, or a failure that must not fall back: that attempt's own
 * error.  Otherwise LG030 with every attempt and skip.
 */
static void
raise_route_failure(const LgPlan *plan, const LgRouteResult *r)
{
	StringInfoData detail;

	initStringInfo(&detail);
	describe_route(&detail, r);
	if (r->nattempts == 0 && r->budget_refused)
		ereport(ERROR,
				(errcode(ERRCODE_LG_BUDGET_EXCEEDED),
				 errmsg("no budget room left for a call to model \"%s\"",
						plan->requested),
				 errdetail("%s", detail.data),
				 errhint("llm_budget_status() shows the tenant's budgets.")));
	if (r->nattempts == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_NO_PROVIDER_AVAILABLE),
				 errmsg("no provider is available for model \"%s\" right now",
						plan->requested),
				 errdetail("%s", detail.data),
				 errhint("Limits and circuit breakers free up by themselves; "
						 "llm_providers_status() shows them.")));
	if (r->stopped || (distinct_deployments(r) == 1 && r->nskipped == 0))
		raise_attempt_error(r->last_failure);
	ereport(ERROR,
			(errcode(ERRCODE_LG_ALL_PROVIDERS_FAILED),
			 errmsg("all providers failed for model \"%s\"", plan->requested),
			 errdetail("%s", detail.data),
			 errhint("llm_providers_status() shows each provider's state; the "
					 "ledger has a row "
					 "for every attempt.")));
}

/* ---- the cache ---- */

static LgAttempt *
answer_from_cache(const LgCall *call, const LgCacheHit *hit, double latency_ms)
{
	LgDeployment *dep = palloc0(sizeof(LgDeployment));
	LgAttempt    *a = palloc0(sizeof(LgAttempt));
	LgSpendHandle spend;

	dep->model = hit->model;
	dep->upstream_model =
		hit->upstream_model ? hit->upstream_model : hit->model;
	dep->provider.name = hit->provider;
	a->number = 1;
	a->dep = dep;
	a->status = LG_ATTEMPT_OK;
	a->cached = true;
	a->latency_ms = latency_ms;
	a->reply.content = hit->content;
	a->reply.finish_reason = hit->finish_reason;
	a->reply.upstream_model = hit->upstream_model;
	a->saved_tokens = hit->usage.input_tokens + hit->usage.output_tokens;
	a->saved_picousd = hit->cost_picousd;
	a->started_at = GetCurrentTimestamp();
	lg_spend_begin(&spend, call, dep, 1);
	lg_router_record(&spend, call, a);
	return a;
}

static double
ms_since(instr_time start)
{
	instr_time now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/* ---- one call ---- */

/*
 * Admit the call against its limits; a budget at its limit may send it to
 * its downgrade model, planned and admitted again.
 */
static void
admit(LgCall *call, LgPlan *plan, LgLimits *limits, LgAccount *acct)
{
	if (limits->nbudgets == 0 && limits->nrates == 0)
		return;
	if (lg_account_admit(acct, limits, call->req, plan, false) ==
		LG_ADMIT_DOWNGRADE)
	{
		call->downgraded_from = plan->requested;
		lg_catalog_replan(plan, call->req, lg_account_downgrade_model(acct));
		check_max_tokens(call->req, plan);
		(void) lg_account_admit(acct, limits, call->req, plan, true);
	}
	call->account = acct;
}

/*
 * From the cache, or through the router: the answer, or an error.  The
 * result jsonb is built only when asked for (llm_chat returns text).
 */
static Jsonb *
answer(LgCall           *call,
	   LgPlan           *plan,
	   instr_time        start,
	   bool              want_result,
	   const LgAttempt **final)
{
	LgRouteResult route;
	LgCacheKey    key;
	LgCacheHit    hit;
	bool          use_cache;

	/* under privacy "none" the cache would keep the answer's text */
	use_cache = call->privacy != LG_PRIVACY_NONE &&
				lg_cache_prepare(&key, call->req, plan, call->tenant);
	if (use_cache && lg_cache_lookup(&key, &hit))
	{
		lg_account_cache_hit(call->account);
		lg_account_finish(call->account);
		*final = answer_from_cache(call, &hit, ms_since(start));
		if (!want_result)
			return NULL;
		return lg_result_build(call,
							   *final,
							   1,
							   *final,
							   NULL,
							   0,
							   ms_since(start));
	}

	lg_router_run(call, plan, &route);
	lg_account_finish(call->account);
	if (route.final == NULL)
		raise_route_failure(plan, &route);
	if (use_cache)
		lg_cache_store(&key, route.final);
	*final = route.final;
	if (!want_result)
		return NULL;
	return lg_result_build(call,
						   route.attempts,
						   route.nattempts,
						   route.final,
						   route.skipped,
						   route.nskipped,
						   ms_since(start));
}

static Jsonb *
complete(text             *tenant_arg,
		 text             *model_arg,
		 Jsonb            *messages,
		 Jsonb            *options,
		 bool              want_result,
		 const LgAttempt **final)
{
	LgRequest *req = palloc(sizeof(LgRequest));
	LgTenant  *tenant = palloc0(sizeof(LgTenant));
	LgPlan    *plan = palloc0(sizeof(LgPlan));
	LgLimits  *limits = palloc0(sizeof(LgLimits));
	LgAccount *acct = palloc0(sizeof(LgAccount));
	LgCall     call;
	Jsonb     *result;
	instr_time start;

	INSTR_TIME_SET_CURRENT(start);
	lg_shmem_require();
	check_enabled();
	PreventCommandIfReadOnly("llm_complete()");
	lg_request_parse(req, tenant_arg, model_arg, messages, options);
	lg_catalog_resolve(req, tenant, plan, limits);
	check_max_tokens(req, plan);

	memset(&call, 0, sizeof(call));
	lg_uuid_generate(&call.request_id);
	call.started_at = GetCurrentTimestamp();
	call.req = req;
	call.tenant = tenant;
	call.requested = plan->requested;
	lg_privacy_prepare(&call, messages);
	admit(&call, plan, limits, acct);

	PG_TRY();
	{
		result = answer(&call, plan, start, want_result, final);
		lg_privacy_store(&call, *final);
	}
	PG_CATCH();
	{
		lg_account_abort(call.account);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return result;
}

/*
 * llm_complete(tenant text, model text, messages jsonb, options jsonb)
 * RETURNS jsonb
 */
Datum
llm_complete(PG_FUNCTION_ARGS)
{
	const LgAttempt *final;

	PG_RETURN_JSONB_P(complete(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							   PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
							   PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
							   PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3),
							   true,
							   &final));
}

/* The one-message array '[{"role": "user", "content": prompt}]'. */
static Jsonb *
single_user_message(text *prompt)
{
	LgJb b = {NULL, NULL};

	if (prompt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("prompt must not be NULL")));
	lg_jb_begin(&b, NULL, true);
	lg_jb_begin(&b, NULL, false);
	lg_jb_str(&b, "role", "user");
	lg_jb_str(&b, "content", text_to_cstring(prompt));
	lg_jb_end(&b, false);
	lg_jb_end(&b, true);
	return lg_jb_finish(&b);
}

/*
 * llm_chat(tenant text, model text, prompt text, options jsonb) RETURNS text
 */
Datum
llm_chat(PG_FUNCTION_ARGS)
{
	const LgAttempt *final;

	(void) complete(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
					single_user_message(
						PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2)),
					PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3),
					false,
					&final);
	if (final->reply.content == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(final->reply.content));
}
