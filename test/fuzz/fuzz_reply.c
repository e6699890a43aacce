/*
 * fuzz_reply.c — libFuzzer target for one protocol's reply and error
 * parsers (built once per protocol: FUZZ_OPS is lg_openai_ops,
 * lg_anthropic_ops or lg_gemini_ops).
 *
 * Any bytes a provider could send: the parser must either fill the reply
 * or refuse it, never read or write out of bounds, and every string it
 * returns must be NUL-terminated valid UTF-8 (it goes into the database).
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "provider.h"
#include "shim.h"

static void
check_text(const char *s)
{
	if (s != NULL && pg_encoding_verifymbstr(PG_UTF8, s, strlen(s)) != (int) strlen(s))
		abort(); /* the parser let invalid UTF-8 through */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char           *body = palloc(size + 1);
	LgReply         reply;
	LgProviderError err;
	char           *why = NULL;
	volatile bool   ok = false;

	memcpy(body, data, size);
	body[size] = '\0';
	memset(&reply, 0, sizeof(reply));
	SHIM_GUARD(ok = FUZZ_OPS.parse_reply(body, size, &reply, &why));
	if (ok)
	{
		check_text(reply.content);
		check_text(reply.finish_reason);
		check_text(reply.provider_request_id);
		check_text(reply.upstream_model);
		if (reply.usage.input_tokens < 0 || reply.usage.output_tokens < 0)
			abort(); /* negative token counts would be billed */
	}
	else if (why != NULL)
		(void) strlen(why);
	memset(&err, 0, sizeof(err));
	SHIM_GUARD(FUZZ_OPS.parse_error(body, size, &err));
	check_text(err.message);
	check_text(err.code);
	shim_reset();
	return 0;
}
