/*
 * fuzz_validator.c — libFuzzer target for the messages/options validator
 * (request.c), run inside a single-user PostgreSQL backend.
 *
 * The validator walks jsonb, whose parser and containers exist only in the
 * server, so this target is a small module loaded into `postgres --single`
 * (test/fuzz/run.sh): fuzz_validator() hands control to libFuzzer
 * (LLVMFuzzerRunDriver), which calls back with each input.  request.c and
 * the file it needs are compiled into the module with coverage; everything
 * else is the server's own code.  libFuzzer ends the backend when it is done
 * (or has found a crash), which ends the single-user session.
 *
 * Input: the messages as JSON text, then a NUL byte, then the options as
 * JSON text.  Text that is not valid UTF-8 or not JSON is skipped (the
 * client boundary and jsonb_in refuse it before the validator sees it).  After a successful parse the request must hold what
 * the validator promises: at least one message, a user message, text in
 * valid UTF-8, the size within the limit, options within their ranges.
 */
#include "llm_gateway.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include <stdlib.h>

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(fuzz_validator);

/* What the extension's settings would be (guc.c is not linked). */
int lg_max_request_kb = 64;

extern int LLVMFuzzerRunDriver(int *argc,
							   char ***argv,
							   int (*cb)(const uint8_t *data, size_t size));

static MemoryContext input_cxt;

static Jsonb *
json_or_null(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

static void
check_promises(const LgRequest *req)
{
	size_t total = 0;
	bool   user = false;

	if (req->nmessages < 1)
		abort();
	for (int i = 0; i < req->nmessages; i++)
	{
		const char *c = req->messages[i].content;

		if (c == NULL || pg_verifymbstr(c, strlen(c), true) == false)
			abort();
		user |= req->messages[i].role == LG_ROLE_USER;
		total += strlen(c);
	}
	if (!user || total != req->content_bytes ||
		total > (size_t) lg_max_request_kb * 1024)
		abort();
	if (req->opt.max_tokens < 0 || req->opt.max_tokens > 1000000 ||
		list_length(req->opt.stop) > 4)
		abort();
	if (req->opt.temperature != NULL)
	{
		double t = strtod(req->opt.temperature, NULL);

		if (!(t >= 0 && t <= 2))
			abort();
	}
}

static int
one_input(const uint8_t *data, size_t size)
{
	MemoryContext caller = MemoryContextSwitchTo(input_cxt);
	char         *text = palloc(size + 2);
	const char   *options;
	Jsonb        *messages = NULL;
	Jsonb        *opts = NULL;
	LgRequest     req;

	memcpy(text, data, size);
	text[size] = '\0';
	text[size + 1] = '\0';
	options = text + strlen(text) + 1;
	/* text reaches SQL only in the server's encoding: the client boundary checks it */
	if (!pg_verifymbstr(text, strlen(text), true) ||
		!pg_verifymbstr(options, strlen(options), true))
	{
		MemoryContextSwitchTo(caller);
		MemoryContextReset(input_cxt);
		return 0;
	}
	PG_TRY();
	{
		messages = json_or_null(text);
		opts = options[0] ? json_or_null(options) : NULL;
	}
	PG_CATCH();
	{
		FlushErrorState();
		messages = NULL;
	}
	PG_END_TRY();
	if (messages != NULL)
	{
		PG_TRY();
		{
			lg_request_parse(&req,
							 cstring_to_text("tenant"),
							 cstring_to_text("model"),
							 messages,
							 opts);
			check_promises(&req);
		}
		PG_CATCH();
		{
			FlushErrorState(); /* a refusal: the expected answer to junk */
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(caller);
	MemoryContextReset(input_cxt);
	return 0;
}

/* fuzz_validator(args text[]) RETURNS void: libFuzzer's command line. */
Datum
fuzz_validator(PG_FUNCTION_ARGS)
{
	ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum     *elems;
	int        n;
	int        argc;
	char     **argv;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
	argc = n + 1;
	argv = palloc(sizeof(char *) * (argc + 1));
	argv[0] = "fuzz_validator";
	for (int i = 0; i < n; i++)
		argv[i + 1] = TextDatumGetCString(elems[i]);
	argv[argc] = NULL;
	input_cxt = AllocSetContextCreate(TopMemoryContext,
									  "fuzz_validator input",
									  ALLOCSET_DEFAULT_SIZES);
	PG_RETURN_INT32(LLVMFuzzerRunDriver(&argc, &argv, one_input));
}
