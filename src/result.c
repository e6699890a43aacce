/*
 * result.c — the jsonb that llm_complete() returns.
 *
 * Shape (the v0 contract, plus a few additive fields):
 *   {"id", "content", "model", "upstream_model", "provider", "finish_reason",
 *    "cached", "fallback", "over_budget", "downgraded_from",
 *    "attempts": [...], "skipped": [...],
 *    "usage": {...}, "latency_ms", "usage_id", "provider_request_id"}
 * Built as text in the server encoding and read back by jsonb_in: every
 * value written here is ours or escaped, so the parse cannot fail.
 */
#include "account.h"

#include "utils/numeric.h"

static void
ms_field(StringInfo b, bool *first, const char *name, double ms)
{
	lg_jkey(b, first, name);
	appendStringInfo(b, "%.3f", ms);
}

static void
append_attempt(StringInfo b, const LgAttempt *a)
{
	bool first = true;

	appendStringInfoChar(b, '{');
	lg_jint(b, &first, "attempt", a->number);
	lg_jstr(b, &first, "provider", a->dep->provider.name);
	lg_jstr(b, &first, "model", a->dep->model);
	lg_jstr(b, &first, "status", lg_attempt_status_name(a->status));
	lg_jstr(b, &first, "error", a->status == LG_ATTEMPT_OK ? NULL : a->error);
	lg_jkey(b, &first, "http_status");
	if (a->http_status)
		appendStringInfo(b, "%ld", a->http_status);
	else
		appendStringInfoString(b, "null");
	lg_jbool(b, &first, "fallback", a->was_fallback);
	lg_jstr(b, &first, "fallback_reason", a->fallback_reason);
	ms_field(b, &first, "latency_ms", a->latency_ms);
	appendStringInfoChar(b, '}');
}

static void
append_skip(StringInfo b, const LgSkip *skip)
{
	bool first = true;

	appendStringInfoChar(b, '{');
	lg_jstr(b, &first, "provider", skip->dep->provider.name);
	lg_jstr(b, &first, "model", skip->dep->model);
	lg_jstr(b, &first, "reason", skip->reason);
	appendStringInfoChar(b, '}');
}

/*
 * The cost in the tenant's currency, as the ledger computes it: USD times
 * the rate, in numeric, rounded to 12 decimals (null without a rate).
 */
static void
append_local_cost(StringInfo b, int64 picousd, const char *rate)
{
	StringInfoData usd;
	Datum          product;

	if (rate == NULL)
	{
		appendStringInfoString(b, "null");
		return;
	}
	initStringInfo(&usd);
	lg_append_picousd(&usd, picousd);
	product =
		DirectFunctionCall2(numeric_mul,
							DirectFunctionCall3(numeric_in,
												CStringGetDatum(usd.data),
												ObjectIdGetDatum(InvalidOid),
												Int32GetDatum(-1)),
							DirectFunctionCall3(numeric_in,
												CStringGetDatum(rate),
												ObjectIdGetDatum(InvalidOid),
												Int32GetDatum(-1)));
	product = DirectFunctionCall2(numeric_round, product, Int32GetDatum(12));
	appendStringInfoString(b, numeric_normalize(DatumGetNumeric(product)));
}

static void
append_usage(StringInfo b, const LgTenant *tenant, const LgAttempt *a)
{
	const LgUsage *u = &a->reply.usage;
	bool           first = true;

	appendStringInfoChar(b, '{');
	lg_jint(b, &first, "input_tokens", u->input_tokens);
	lg_jint(b, &first, "output_tokens", u->output_tokens);
	lg_jint(b, &first, "cached_tokens", u->cached_tokens);
	lg_jint(b, &first, "cache_write_tokens", u->cache_write_tokens);
	lg_jint(b, &first, "reasoning_tokens", u->reasoning_tokens);
	lg_jint(b, &first, "total_tokens", u->input_tokens + u->output_tokens);
	lg_jkey(b, &first, "cost_usd");
	lg_append_picousd(b, a->cost_picousd);
	lg_jkey(b, &first, "cost");
	append_local_cost(b, a->cost_picousd, tenant->exchange_rate);
	lg_jstr(b, &first, "currency", tenant->currency);
	lg_jstr(b, &first, "exchange_rate", tenant->exchange_rate);
	lg_jstr(b, &first, "rate_source", tenant->rate_source);
	lg_jbool(b, &first, "estimated", a->reply.usage_estimated);
	lg_jint(b, &first, "saved_tokens", a->saved_tokens);
	lg_jkey(b, &first, "saved_usd");
	lg_append_picousd(b, a->saved_picousd);
	appendStringInfoChar(b, '}');
}

Jsonb *
lg_result_build(const LgCall    *call,
				const LgAttempt *attempts,
				int              nattempts,
				const LgAttempt *final,
				const LgSkip    *skipped,
				int              nskipped,
				double           latency_ms)
{
	StringInfoData b;
	bool           first = true;

	initStringInfo(&b);
	appendStringInfoChar(&b, '{');
	lg_jstr(&b,
			&first,
			"id",
			DatumGetCString(
				DirectFunctionCall1(uuid_out,
									UUIDPGetDatum(&call->request_id))));
	lg_jstr(&b, &first, "content", final->reply.content);
	lg_jstr(&b, &first, "model", final->dep->model);
	lg_jstr(&b,
			&first,
			"upstream_model",
			final->reply.upstream_model ? final->reply.upstream_model
										: final->dep->upstream_model);
	lg_jstr(&b, &first, "provider", final->dep->provider.name);
	lg_jstr(&b, &first, "finish_reason", final->reply.finish_reason);
	lg_jbool(&b, &first, "cached", final->cached);
	lg_jbool(&b, &first, "fallback", final->was_fallback);
	lg_jbool(&b,
			 &first,
			 "over_budget",
			 call->account != NULL && call->account->over_budget);
	lg_jstr(&b, &first, "downgraded_from", call->downgraded_from);
	lg_jkey(&b, &first, "attempts");
	appendStringInfoChar(&b, '[');
	for (int i = 0; i < nattempts; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		append_attempt(&b, &attempts[i]);
	}
	appendStringInfoChar(&b, ']');
	lg_jkey(&b, &first, "skipped");
	appendStringInfoChar(&b, '[');
	for (int i = 0; i < nskipped; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		append_skip(&b, &skipped[i]);
	}
	appendStringInfoChar(&b, ']');
	lg_jkey(&b, &first, "usage");
	append_usage(&b, call->tenant, final);
	ms_field(&b, &first, "latency_ms", latency_ms);
	lg_jint(&b, &first, "usage_id", final->usage_id);
	lg_jstr(&b,
			&first,
			"provider_request_id",
			final->reply.provider_request_id);
	appendStringInfoChar(&b, '}');

	return lg_jfinish(&b);
}
