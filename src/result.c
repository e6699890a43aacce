/*
 * result.c — the jsonb that llm_complete() returns.
 *
 * Shape (the v0 contract, plus a few additive fields):
 *   {"id", "content", "model", "upstream_model", "provider", "finish_reason",
 *    "cached", "fallback", "over_budget", "downgraded_from",
 *    "attempts": [...], "skipped": [...],
 *    "usage": {...}, "latency_ms", "usage_id", "provider_request_id"}
 * Built as a JsonbValue tree (json_out.c), strings in the server encoding.
 */
#include "account.h"

#include "utils/numeric.h"

static void
ms_field(LgJb *b, const char *name, double ms)
{
	char text[64];

	snprintf(text, sizeof(text), "%.3f", ms);
	lg_jb_number(b, name, text);
}

static void
picousd_field(LgJb *b, const char *name, int64 picousd)
{
	StringInfoData text;

	initStringInfo(&text);
	lg_append_picousd(&text, picousd);
	lg_jb_number(b, name, text.data);
	pfree(text.data);
}

static void
append_attempt(LgJb *b, const LgAttempt *a)
{
	lg_jb_begin(b, NULL, false);
	lg_jb_int(b, "attempt", a->number);
	lg_jb_str(b, "provider", a->dep->provider.name);
	lg_jb_str(b, "model", a->dep->model);
	lg_jb_str(b, "status", lg_attempt_status_name(a->status));
	lg_jb_str(b, "error", a->status == LG_ATTEMPT_OK ? NULL : a->error);
	if (a->http_status)
		lg_jb_int(b, "http_status", a->http_status);
	else
		lg_jb_null(b, "http_status");
	lg_jb_bool(b, "fallback", a->was_fallback);
	lg_jb_str(b, "fallback_reason", a->fallback_reason);
	ms_field(b, "latency_ms", a->latency_ms);
	lg_jb_end(b, false);
}

static void
append_skip(LgJb *b, const LgSkip *skip)
{
	lg_jb_begin(b, NULL, false);
	lg_jb_str(b, "provider", skip->dep->provider.name);
	lg_jb_str(b, "model", skip->dep->model);
	lg_jb_str(b, "reason", skip->reason);
	lg_jb_end(b, false);
}

/*
 * The cost in the tenant's currency, as the ledger computes it: USD times
 * the rate, in numeric, rounded to 12 decimals (null without a rate).
 */
static void
local_cost_field(LgJb *b, int64 picousd, const char *rate)
{
	StringInfoData usd;
	Datum          product;

	if (rate == NULL)
	{
		lg_jb_null(b, "cost");
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
	lg_jb_number(b, "cost", numeric_normalize(DatumGetNumeric(product)));
}

static void
append_usage(LgJb *b, const LgTenant *tenant, const LgAttempt *a)
{
	const LgUsage *u = &a->reply.usage;

	lg_jb_begin(b, "usage", false);
	lg_jb_int(b, "input_tokens", u->input_tokens);
	lg_jb_int(b, "output_tokens", u->output_tokens);
	lg_jb_int(b, "cached_tokens", u->cached_tokens);
	lg_jb_int(b, "cache_write_tokens", u->cache_write_tokens);
	lg_jb_int(b, "reasoning_tokens", u->reasoning_tokens);
	lg_jb_int(b, "total_tokens", u->input_tokens + u->output_tokens);
	picousd_field(b, "cost_usd", a->cost_picousd);
	local_cost_field(b, a->cost_picousd, tenant->exchange_rate);
	lg_jb_str(b, "currency", tenant->currency);
	lg_jb_str(b, "exchange_rate", tenant->exchange_rate);
	lg_jb_str(b, "rate_source", tenant->rate_source);
	lg_jb_bool(b, "estimated", a->reply.usage_estimated);
	lg_jb_int(b, "saved_tokens", a->saved_tokens);
	picousd_field(b, "saved_usd", a->saved_picousd);
	lg_jb_end(b, false);
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
	LgJb b = {NULL, NULL};

	lg_jb_begin(&b, NULL, false);
	lg_jb_str(&b,
			  "id",
			  DatumGetCString(
				  DirectFunctionCall1(uuid_out,
									  UUIDPGetDatum(&call->request_id))));
	lg_jb_str(&b, "content", final->reply.content);
	lg_jb_str(&b, "model", final->dep->model);
	lg_jb_str(&b,
			  "upstream_model",
			  final->reply.upstream_model ? final->reply.upstream_model
										  : final->dep->upstream_model);
	lg_jb_str(&b, "provider", final->dep->provider.name);
	lg_jb_str(&b, "finish_reason", final->reply.finish_reason);
	lg_jb_bool(&b, "cached", final->cached);
	lg_jb_bool(&b, "fallback", final->was_fallback);
	lg_jb_bool(&b,
			   "over_budget",
			   call->account != NULL && call->account->over_budget);
	lg_jb_str(&b, "downgraded_from", call->downgraded_from);
	lg_jb_begin(&b, "attempts", true);
	for (int i = 0; i < nattempts; i++)
		append_attempt(&b, &attempts[i]);
	lg_jb_end(&b, true);
	lg_jb_begin(&b, "skipped", true);
	for (int i = 0; i < nskipped; i++)
		append_skip(&b, &skipped[i]);
	lg_jb_end(&b, true);
	append_usage(&b, call->tenant, final);
	ms_field(&b, "latency_ms", latency_ms);
	lg_jb_int(&b, "usage_id", final->usage_id);
	lg_jb_str(&b, "provider_request_id", final->reply.provider_request_id);
	lg_jb_end(&b, false);
	return lg_jb_finish(&b);
}
