/*
 * ledger.c — one llm_gateway.usage row per attempt.
 *
 * The ledger is insert-only: rows are never updated, so writing one never
 * waits on another session (DESIGN principle 3).  Each row keeps the raw
 * token components next to the cost, so a price correction can be replayed.
 * Rows are written as the owner of schema llm_gateway: callers cannot write
 * the ledger directly.
 */
#include "llm_gateway.h"

#include "catalog/pg_type.h"

#define NPARAMS 26

static const char *const insert_sql =
	"INSERT INTO llm_gateway.usage"
	" (created_at, request_id, attempt, tenant, agent, channel, session_id,"
	"  conversation_id, model, provider, upstream_model, status, http_status,"
	"  error_code, error, input_tokens, cached_tokens, cache_write_tokens,"
	"  reasoning_tokens, output_tokens, usage_estimated, cost_usd, latency_ms,"
	"  finish_reason, provider_request_id, metadata)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
	"$15,"
	"  $16, $17, $18, $19, $20, $21, $22::numeric / 1000000000000,"
	"  round($23::numeric, 3), $24, $25, $26)"
	" RETURNING id";

static const Oid param_types[NPARAMS] =
	{TIMESTAMPTZOID, UUIDOID,   INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	 TEXTOID,        TEXTOID,   TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID,
	 TEXTOID,        INT8OID,   INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID,
	 INT8OID,        FLOAT8OID, TEXTOID, TEXTOID, JSONBOID};

static SPIPlanPtr insert_plan = NULL;

void
lg_uuid_generate(pg_uuid_t *uuid)
{
	if (!pg_strong_random(uuid->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random request id")));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40; /* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

static void
set_text(Datum *values, char *nulls, int i, const char *s)
{
	if (s == NULL)
		nulls[i] = 'n';
	else
		values[i] = CStringGetTextDatum(s);
}

static char *
error_text(const LgAttempt *a)
{
	if (a->status == LG_ATTEMPT_OK)
		return NULL;
	return a->detail ? psprintf("%s: %s", a->error, a->detail) : a->error;
}

static void
fill_params(const LgCall *call, const LgAttempt *a, Datum *v, char *n)
{
	const LgOptions *o = &call->req->opt;
	const LgUsage   *u = &a->reply.usage;

	memset(n, ' ', NPARAMS);
	v[0] = TimestampTzGetDatum(call->started_at);
	v[1] = UUIDPGetDatum(&call->request_id);
	v[2] = Int32GetDatum(a->number);
	set_text(v, n, 3, call->tenant->tenant);
	set_text(v, n, 4, o->agent);
	set_text(v, n, 5, o->channel);
	set_text(v, n, 6, o->session_id);
	set_text(v, n, 7, o->conversation_id);
	set_text(v, n, 8, a->dep->model);
	set_text(v, n, 9, a->dep->provider.name);
	set_text(v,
			 n,
			 10,
			 a->reply.upstream_model ? a->reply.upstream_model
									 : a->dep->upstream_model);
	set_text(v, n, 11, lg_attempt_status_name(a->status));
	v[12] = Int32GetDatum((int32) a->http_status);
	if (a->http_status == 0)
		n[12] = 'n';
	set_text(v,
			 n,
			 13,
			 a->status == LG_ATTEMPT_OK ? NULL
										: unpack_sql_state(a->sqlstate));
	set_text(v, n, 14, error_text(a));
	v[15] = Int64GetDatum(u->input_tokens);
	v[16] = Int64GetDatum(u->cached_tokens);
	v[17] = Int64GetDatum(u->cache_write_tokens);
	v[18] = Int64GetDatum(u->reasoning_tokens);
	v[19] = Int64GetDatum(u->output_tokens);
	v[20] = BoolGetDatum(a->reply.usage_estimated);
	v[21] = Int64GetDatum(a->cost_picousd);
	v[22] = Float8GetDatum(a->latency_ms);
	set_text(v, n, 23, a->reply.finish_reason);
	set_text(v, n, 24, a->reply.provider_request_id);
	if (o->metadata)
		v[25] = JsonbPGetDatum(o->metadata);
	else
		n[25] = 'n';
}

/* Insert the attempt's row and remember its id in attempt->usage_id. */
void
lg_ledger_record(const LgCall *call, LgAttempt *attempt)
{
	Datum        values[NPARAMS];
	char         nulls[NPARAMS];
	LgOwnerScope scope;
	bool         isnull;
	int          rc;

	fill_params(call, attempt, values, nulls);
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (insert_plan == NULL)
	{
		SPIPlanPtr plan =
			SPI_prepare(insert_sql, NPARAMS, (Oid *) param_types);

		if (plan == NULL)
			elog(ERROR,
				 "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plan = plan;
	}
	rc = SPI_execute_plan(insert_plan, values, nulls, false, 1);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR,
			 "could not write the usage ledger: %s",
			 SPI_result_code_string(rc));
	attempt->usage_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc,
													1,
													&isnull));
	SPI_finish();
	lg_owner_scope_exit(&scope);
}
