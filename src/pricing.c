/*
 * pricing.c — the cost of a call, exactly.
 *
 * Prices are integers in micro-USD per million tokens (the registry's numeric
 * prices have at most six decimals), so tokens × price is the cost in
 * pico-USD with no rounding at all.  Token components follow the gateway's
 * convention (see LgUsage): input_tokens counts every prompt token, of which
 * cached_tokens were read from and cache_write_tokens written to the
 * provider's prompt cache; output_tokens includes reasoning.
 *
 *   cost = uncached input × input price + cached × cached-input price
 *        + cache writes × cache-write price + output × output price
 */
#include "llm_gateway.h"

#include "common/int.h"

static int64
term(int64 tokens, int64 price)
{
	int64 product;

	if (tokens <= 0 || price <= 0)
		return 0;
	if (pg_mul_s64_overflow(tokens, price, &product))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("call cost is out of range")));
	return product;
}

int64
lg_cost_picousd(const LgUsage *u, const LgPrice *p)
{
	int64 uncached =
		u->input_tokens - u->cached_tokens - u->cache_write_tokens;
	int64 terms[4];
	int64 total = 0;

	terms[0] = term(Max(uncached, 0), p->input);
	terms[1] = term(u->cached_tokens, p->cached_input);
	terms[2] = term(u->cache_write_tokens, p->cache_write);
	terms[3] = term(u->output_tokens, p->output);
	for (int i = 0; i < (int) lengthof(terms); i++)
		if (pg_add_s64_overflow(total, terms[i], &total))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("call cost is out of range")));
	return total;
}

/* Append pico-USD as a decimal USD amount without trailing zeros. */
void
lg_append_picousd(StringInfo buf, int64 picousd)
{
	char frac[16];
	int  len;

	Assert(picousd >= 0);
	len = snprintf(frac,
				   sizeof(frac),
				   "%012lld",
				   (long long) (picousd % INT64CONST(1000000000000)));
	while (len > 0 && frac[len - 1] == '0')
		frac[--len] = '\0';
	appendStringInfo(buf,
					 "%lld",
					 (long long) (picousd / INT64CONST(1000000000000)));
	if (len > 0)
		appendStringInfo(buf, ".%s", frac);
}

/*
 * The prompt's tokens, estimated from its length: a token per 4 bytes of
 * each message, rounded up, plus 4 per message for the role and framing.
 */
int64
lg_prompt_estimate(const LgRequest *req)
{
	return (int64) (req->content_bytes + 3 * req->nmessages) / 4 +
		   4 * (int64) req->nmessages;
}
