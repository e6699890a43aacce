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
key(StringInfo b, bool *first, const char *name)
{
	if (!*first)
		appendStringInfoChar(b, ',');
	*first = false;
	escape_json(b, name);
	appendStringInfoChar(b, ':');
}

static void
str_field(StringInfo b, bool *first, const char *name, const char *value)
{
	key(b, first, name);
	if (value)
		escape_json(b, value);
	else
		appendStringInfoString(b, "null");
}

static void
int_field(StringInfo b, bool *first, const char *name, int64 value)
{
	key(b, first, name);
	appendStringInfo(b, INT64_FORMAT, value);
}

static void
bool_field(StringInfo b, bool *first, const char *name, bool value)
{
	key(b, first, name);
	appendStringInfoString(b, value ? "true" : "false");
}

static void
ms_field(StringInfo b, bool *first, const char *name, double ms)
{
	key(b, first, name);
	appendStringInfo(b, "%.3f", ms);
}

static void
append_attempt(StringInfo b, const LgAttempt *a)
{
	bool first = true;

	appendStringInfoChar(b, '{');
	int_field(b, &first, "attempt", a->number);
	str_field(b, &first, "provider", a->dep->provider.name);
	str_field(b, &first, "model", a->dep->model);
	str_field(b, &first, "status", lg_attempt_status_name(a->status));
	str_field(b,
			  &first,
			  "error",
			  a->status == LG_ATTEMPT_OK ? NULL : a->error);
	key(b, &first, "http_status");
	if (a->http_status)
		appendStringInfo(b, "%ld", a->http_status);
	else
		appendStringInfoString(b, "null");
	bool_field(b, &first, "fallback", a->was_fallback);
	str_field(b, &first, "fallback_reason", a->fallback_reason);
	ms_field(b, &first, "latency_ms", a->latency_ms);
	appendStringInfoChar(b, '}');
}

static void
append_skip(StringInfo b, const LgSkip *skip)
{
	bool first = true;

	appendStringInfoChar(b, '{');
	str_field(b, &first, "provider", skip->dep->provider.name);
	str_field(b, &first, "model", skip->dep->model);
	str_field(b, &first, "reason", skip->reason);
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
	int_field(b, &first, "input_tokens", u->input_tokens);
	int_field(b, &first, "output_tokens", u->output_tokens);
	int_field(b, &first, "cached_tokens", u->cached_tokens);
	int_field(b, &first, "cache_write_tokens", u->cache_write_tokens);
	int_field(b, &first, "reasoning_tokens", u->reasoning_tokens);
	int_field(b, &first, "total_tokens", u->input_tokens + u->output_tokens);
	key(b, &first, "cost_usd");
	lg_append_picousd(b, a->cost_picousd);
	key(b, &first, "cost");
	append_local_cost(b, a->cost_picousd, tenant->exchange_rate);
	str_field(b, &first, "currency", tenant->currency);
	str_field(b, &first, "exchange_rate", tenant->exchange_rate);
	str_field(b, &first, "rate_source", tenant->rate_source);
	bool_field(b, &first, "estimated", a->reply.usage_estimated);
	int_field(b, &first, "saved_tokens", a->saved_tokens);
	key(b, &first, "saved_usd");
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
	str_field(&b,
			  &first,
			  "id",
			  DatumGetCString(
				  DirectFunctionCall1(uuid_out,
									  UUIDPGetDatum(&call->request_id))));
	str_field(&b, &first, "content", final->reply.content);
	str_field(&b, &first, "model", final->dep->model);
	str_field(&b,
			  &first,
			  "upstream_model",
			  final->reply.upstream_model ? final->reply.upstream_model
										  : final->dep->upstream_model);
	str_field(&b, &first, "provider", final->dep->provider.name);
	str_field(&b, &first, "finish_reason", final->reply.finish_reason);
	bool_field(&b, &first, "cached", final->cached);
	bool_field(&b, &first, "fallback", final->was_fallback);
	bool_field(&b,
			   &first,
			   "over_budget",
			   call->account != NULL && call->account->over_budget);
	str_field(&b, &first, "downgraded_from", call->downgraded_from);
	key(&b, &first, "attempts");
	appendStringInfoChar(&b, '[');
	for (int i = 0; i < nattempts; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		append_attempt(&b, &attempts[i]);
	}
	appendStringInfoChar(&b, ']');
	key(&b, &first, "skipped");
	appendStringInfoChar(&b, '[');
	for (int i = 0; i < nskipped; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		append_skip(&b, &skipped[i]);
	}
	appendStringInfoChar(&b, ']');
	key(&b, &first, "usage");
	append_usage(&b, call->tenant, final);
	ms_field(&b, &first, "latency_ms", latency_ms);
	int_field(&b, &first, "usage_id", final->usage_id);
	str_field(&b,
			  &first,
			  "provider_request_id",
			  final->reply.provider_request_id);
	appendStringInfoChar(&b, '}');

	return DatumGetJsonbP(
		DirectFunctionCall1(jsonb_in, CStringGetDatum(b.data)));
}
