/*
 * api.c — the SQL-callable entry points llm_complete() and llm_chat().
 *
 * One call: validate the arguments, resolve tenant (with the membership
 * check) and deployment, run the attempt, record it, then either return the
 * result or raise the attempt's error.  From the moment the request leaves,
 * the attempt holds a spend slot (spend.c), so its ledger row survives a
 * rollback, an error, a cancel or the end of the backend.
 */
#include "llm_gateway.h"

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

static void
check_max_tokens(const LgRequest *req, const LgDeployment *dep)
{
	if (dep->max_output_tokens > 0 &&
		req->opt.max_tokens > dep->max_output_tokens)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("max_tokens %d exceeds the limit of model \"%s\"",
						req->opt.max_tokens,
						dep->model),
				 errdetail("The model answers with at most %d tokens.",
						   dep->max_output_tokens)));
}

static void
raise_attempt_error(const LgAttempt *a)
{
	ereport(ERROR,
			(errcode(a->sqlstate),
			 errmsg_internal("%s", a->error),
			 a->detail ? errdetail_internal("%s", a->detail) : 0,
			 a->hint ? errhint("%s", a->hint) : 0));
}

/* The spend slot is taken just before the request leaves. */
typedef struct SpendHookArg
{
	LgSpendHandle      *handle;
	const LgCall       *call;
	const LgDeployment *dep;
} SpendHookArg;

static void
spend_before_send(void *arg)
{
	SpendHookArg *h = (SpendHookArg *) arg;

	lg_spend_begin(h->handle, h->call, h->dep, 1);
}

static void
spend_on_abandon(void *arg, const char *why)
{
	SpendHookArg *h = (SpendHookArg *) arg;

	lg_spend_interrupted(h->handle, why);
}

/*
 * Record the attempt: its slot gets the outcome, and the caller's own
 * transaction gets the row too unless the worker alone writes it.
 */
static void
record_attempt(LgSpendHandle *spend, const LgCall *call, LgAttempt *attempt)
{
	LgSpendEntry *entry = palloc(sizeof(LgSpendEntry));

	lg_spend_settle(spend, call, attempt, entry);
	if (spend->caller_writes)
	{
		lg_ledger_insert(entry, true);
		lg_spend_inserted(spend);
	}
	attempt->usage_id = spend->usage_id;
	pfree(entry);
}

static Jsonb *
complete(text             *tenant_arg,
		 text             *model_arg,
		 Jsonb            *messages,
		 Jsonb            *options,
		 const LgAttempt **final)
{
	LgRequest     *req = palloc(sizeof(LgRequest));
	LgTenant      *tenant = palloc0(sizeof(LgTenant));
	LgDeployment  *dep = palloc0(sizeof(LgDeployment));
	LgAttempt     *attempt = palloc0(sizeof(LgAttempt));
	LgSpendHandle  spend;
	LgCall         call;
	SpendHookArg   hook_arg = {&spend, &call, dep};
	LgAttemptHooks hooks = {spend_before_send, spend_on_abandon, &hook_arg};
	instr_time     start;
	instr_time     elapsed;

	INSTR_TIME_SET_CURRENT(start);
	lg_shmem_require();
	check_enabled();
	PreventCommandIfReadOnly("llm_complete()");
	lg_request_parse(req, tenant_arg, model_arg, messages, options);
	lg_catalog_resolve(req, tenant, dep);
	check_max_tokens(req, dep);

	lg_uuid_generate(&call.request_id);
	call.started_at = GetCurrentTimestamp();
	call.req = req;
	call.tenant = tenant;

	lg_attempt_run(attempt, req, dep, &hooks);
	record_attempt(&spend, &call, attempt);
	if (attempt->status != LG_ATTEMPT_OK)
		raise_attempt_error(attempt);

	*final = attempt;
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	return lg_result_build(&call,
						   attempt,
						   1,
						   attempt,
						   INSTR_TIME_GET_MILLISEC(elapsed));
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
							   &final));
}

/* The one-message array '[{"role": "user", "content": prompt}]'. */
static Jsonb *
single_user_message(text *prompt)
{
	StringInfoData b;

	if (prompt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("prompt must not be NULL")));
	initStringInfo(&b);
	appendStringInfoString(&b, "[{\"role\":\"user\",\"content\":");
	escape_json(&b, text_to_cstring(prompt));
	appendStringInfoString(&b, "}]");
	return DatumGetJsonbP(
		DirectFunctionCall1(jsonb_in, CStringGetDatum(b.data)));
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
					&final);
	if (final->reply.content == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(final->reply.content));
}
