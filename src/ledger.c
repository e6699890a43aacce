/*
 * ledger.c — insert one llm_gateway.usage row.
 *
 * The ledger is insert-only: rows are never updated, so writing one never
 * waits on another session (DESIGN principle 3).  Each row keeps the raw
 * token components next to the cost, so a price correction can be replayed.
 *
 * Two writers use this: the caller, in its own transaction, one row at a
 * time, and the worker (or llm_maintenance) for the rows no caller's
 * transaction committed, a batch per statement.
 * The row id is drawn before the call, so "ON CONFLICT DO NOTHING" makes a
 * second write of the same row a no-op.  Rows are written as the owner of
 * schema llm_gateway: callers cannot write the ledger directly.
 */
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#define NPARAMS 41

static const char *const insert_sql =
	"INSERT INTO llm_gateway.usage"
	" (id, created_at, request_id, attempt, tenant, agent, channel, "
	"session_id,"
	"  conversation_id, model, provider, upstream_model, status, http_status,"
	"  error_code, error, input_tokens, cached_tokens, cache_write_tokens,"
	"  reasoning_tokens, output_tokens, usage_estimated, cost_usd, latency_ms,"
	"  finish_reason, provider_request_id, metadata, written_by,"
	"  requested_model, cached, was_fallback, fallback_reason, saved_tokens, "
	"saved_usd, currency, exchange_rate, rate_source, cost_local,"
	"  over_budget, downgraded_from, prompt_sha256, response_sha256)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
	"$15,"
	"  $16, $17, $18, $19, $20, $21, $22, $23::numeric / 1000000000000,"
	"  round($24::numeric, 3), $25, $26, $27::jsonb, $28,"
	"  $29, $30, $31, $32, $33, $34::numeric / 1000000000000,"
	"  $35, $36::numeric, $37,"
	"  round($23::numeric / 1000000000000 * $36::numeric, 12), $38, $39,"
	"  $40, $41)"
	" ON CONFLICT DO NOTHING"; /* each partition's unique id index */

static const Oid param_types[NPARAMS] =
	{INT8OID, TIMESTAMPTZOID, UUIDOID,   INT4OID, TEXTOID,  TEXTOID, TEXTOID,
	 TEXTOID, TEXTOID,        TEXTOID,   TEXTOID, TEXTOID,  TEXTOID, INT4OID,
	 TEXTOID, TEXTOID,        INT8OID,   INT8OID, INT8OID,  INT8OID, INT8OID,
	 BOOLOID, INT8OID,        FLOAT8OID, TEXTOID, TEXTOID,  TEXTOID, TEXTOID,
	 TEXTOID, BOOLOID,        BOOLOID,   TEXTOID, INT8OID,  INT8OID, TEXTOID,
	 TEXTOID, TEXTOID,        BOOLOID,   TEXTOID, BYTEAOID, BYTEAOID};

/*
 * Many rows in one statement (the worker's flush): the same parameters, as
 * arrays of one element per row.
 */
static const char *const insert_many_sql =
	"INSERT INTO llm_gateway.usage"
	" (id, created_at, request_id, attempt, tenant, agent, channel, "
	"session_id,"
	"  conversation_id, model, provider, upstream_model, status, http_status,"
	"  error_code, error, input_tokens, cached_tokens, cache_write_tokens,"
	"  reasoning_tokens, output_tokens, usage_estimated, cost_usd, latency_ms,"
	"  finish_reason, provider_request_id, metadata, written_by,"
	"  requested_model, cached, was_fallback, fallback_reason, saved_tokens, "
	"saved_usd, currency, exchange_rate, rate_source, cost_local,"
	"  over_budget, downgraded_from, prompt_sha256, response_sha256)"
	" SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, "
	"c15, c16, c17, c18, c19, c20, c21, c22, c23::numeric / 1000000000000,"
	"  round(c24::numeric, 3), c25, c26, c27::jsonb, c28, c29, c30, c31, "
	"c32, c33, c34::numeric / 1000000000000, c35, c36::numeric, c37,"
	"  round(c23::numeric / 1000000000000 * c36::numeric, 12), c38, c39,"
	"  c40, c41"
	"  FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
	"$14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, "
	"$28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41)"
	"       AS r(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, "
	"c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, "
	"c29, c30, c31, c32, c33, c34, c35, c36, c37, c38, c39, c40, c41)"
	" ON CONFLICT DO NOTHING";

static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr insert_many_plan = NULL;

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

/* An entry's text field as a parameter: "" stands for NULL. */
static void
set_text(Datum *values, char *nulls, int i, const char *s)
{
	if (s[0] == '\0')
		nulls[i] = 'n';
	else
		values[i] = CStringGetTextDatum(s);
}

/* A digest as a bytea parameter, NULL when there is none. */
static void
set_digest(Datum *values, char *nulls, int i, bool has, const uint8 *digest)
{
	bytea *b;

	if (!has)
	{
		nulls[i] = 'n';
		return;
	}
	b = palloc(VARHDRSZ + 32);
	SET_VARSIZE(b, VARHDRSZ + 32);
	memcpy(VARDATA(b), digest, 32);
	values[i] = PointerGetDatum(b);
}

static void
fill_params(const LgSpendEntry *e, bool by_caller, Datum *v, char *n)
{
	memset(n, ' ', NPARAMS);
	v[0] = Int64GetDatum(e->usage_id);
	v[1] = TimestampTzGetDatum(e->created_at);
	v[2] = UUIDPGetDatum(&e->request_id);
	v[3] = Int32GetDatum(e->attempt);
	set_text(v, n, 4, e->tenant);
	set_text(v, n, 5, e->agent);
	set_text(v, n, 6, e->channel);
	set_text(v, n, 7, e->session_id);
	set_text(v, n, 8, e->conversation_id);
	set_text(v, n, 9, e->model);
	set_text(v, n, 10, e->provider);
	set_text(v, n, 11, e->upstream_model);
	set_text(v, n, 12, e->status);
	v[13] = Int32GetDatum(e->http_status);
	if (e->http_status == 0)
		n[13] = 'n';
	set_text(v, n, 14, e->error_code);
	set_text(v, n, 15, e->error);
	v[16] = Int64GetDatum(e->input_tokens);
	v[17] = Int64GetDatum(e->cached_tokens);
	v[18] = Int64GetDatum(e->cache_write_tokens);
	v[19] = Int64GetDatum(e->reasoning_tokens);
	v[20] = Int64GetDatum(e->output_tokens);
	v[21] = BoolGetDatum(e->usage_estimated);
	v[22] = Int64GetDatum(e->cost_picousd);
	v[23] = Float8GetDatum(e->latency_ms);
	set_text(v, n, 24, e->finish_reason);
	set_text(v, n, 25, e->provider_request_id);
	set_text(v, n, 26, e->metadata);
	v[27] = CStringGetTextDatum(by_caller ? "caller" : "worker");
	set_text(v, n, 28, e->requested_model);
	v[29] = BoolGetDatum(e->cached);
	v[30] = BoolGetDatum(e->was_fallback);
	set_text(v, n, 31, e->fallback_reason);
	v[32] = Int64GetDatum(e->saved_tokens);
	v[33] = Int64GetDatum(e->saved_picousd);
	set_text(v, n, 34, e->currency);
	set_text(v, n, 35, e->exchange_rate);
	set_text(v, n, 36, e->rate_source);
	v[37] = BoolGetDatum(e->over_budget);
	set_text(v, n, 38, e->downgraded_from);
	set_digest(v, n, 39, e->has_prompt_sha256, e->prompt_sha256);
	set_digest(v, n, 40, e->has_response_sha256, e->response_sha256);
}

void
lg_ledger_insert(const LgSpendEntry *entry, bool by_caller)
{
	Datum        values[NPARAMS];
	char         nulls[NPARAMS];
	LgOwnerScope scope;
	int          rc;

	fill_params(entry, by_caller, values, nulls);
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lg_spi_prepare_once(&insert_plan, insert_sql, NPARAMS, param_types);
	rc = SPI_execute_plan(insert_plan, values, nulls, false, 1);
	if (rc != SPI_OK_INSERT)
		elog(ERROR,
			 "could not write the usage ledger: %s",
			 SPI_result_code_string(rc));
	SPI_finish();
	lg_owner_scope_exit(&scope);
}

/* One array parameter per column: element i is entry i's value. */
static void
column_arrays(const LgSpendEntry *entries, int n, Datum *arrays, Oid *types)
{
	Datum *values = palloc(sizeof(Datum) * NPARAMS * n);
	char  *nulls = palloc(NPARAMS * n);
	Datum *col = palloc(sizeof(Datum) * n);
	bool  *colnull = palloc(sizeof(bool) * n);
	int    dims[1] = {n};
	int    lbs[1] = {1};

	for (int r = 0; r < n; r++)
		fill_params(&entries[r],
					false,
					&values[r * NPARAMS],
					&nulls[r * NPARAMS]);
	for (int c = 0; c < NPARAMS; c++)
	{
		int16 typlen;
		bool  byval;
		char  align;

		for (int r = 0; r < n; r++)
		{
			col[r] = values[r * NPARAMS + c];
			colnull[r] = nulls[r * NPARAMS + c] == 'n';
		}
		get_typlenbyvalalign(param_types[c], &typlen, &byval, &align);
		arrays[c] = PointerGetDatum(construct_md_array(col,
													   colnull,
													   1,
													   dims,
													   lbs,
													   param_types[c],
													   typlen,
													   byval,
													   align));
		types[c] = get_array_type(param_types[c]);
	}
}

/*
 * Insert the rows of n entries written by the worker, in one statement
 * (the caller has connected to SPI as the schema owner).
 */
void
lg_ledger_insert_many(const LgSpendEntry *entries, int n)
{
	Datum arrays[NPARAMS];
	Oid   types[NPARAMS];
	int   rc;

	if (n == 0)
		return;
	column_arrays(entries, n, arrays, types);
	lg_spi_prepare_once(&insert_many_plan, insert_many_sql, NPARAMS, types);
	rc = SPI_execute_plan(insert_many_plan, arrays, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR,
			 "could not write the usage ledger: %s",
			 SPI_result_code_string(rc));
}
