/*
 * rotate.c — llm_rotate_master_key(): re-seal every stored provider key
 * under the current master key.
 *
 * The procedure (README "Rotating the master key"): set the new key as
 * llm_gateway.master_key and the old one as llm_gateway.previous_master_key,
 * reload, call llm_rotate_master_key(), then remove the previous key.  While
 * both are set every key opens, so calls never fail during a rotation.
 *
 * Runs in the caller's transaction with the providers' rows locked: either
 * every key it could open is re-sealed, or (on error) none is.
 */
#include "llm_gateway.h"
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(llm_gateway_rotate_master_key);

static const char *const sealed_sql =
	"SELECT name, api_key_enc FROM llm_gateway.providers"
	" WHERE api_key_enc IS NOT NULL ORDER BY name FOR UPDATE";
static const char *const update_sql =
	"UPDATE llm_gateway.providers SET api_key_enc = $2, updated_at = now()"
	" WHERE name = $1";

/* Re-seal one key; false when it opens with neither master key. */
static bool
reseal(const char *name, const bytea *sealed, SPIPlanPtr update)
{
	char  *context = psprintf("provider:%s", name);
	char  *plain;
	Datum  args[2];
	bytea *fresh;

	if (lg_secret_open(sealed, context, &plain) != LG_SEAL_OK)
		return false;
	fresh = lg_secret_encrypt(plain, strlen(plain), context);
	lg_secret_free(plain);
	args[0] = CStringGetTextDatum(name);
	args[1] = PointerGetDatum(fresh);
	if (SPI_execute_plan(update, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not store a re-sealed key");
	return true;
}

/*
 * llm_rotate_master_key() RETURNS jsonb
 *
 * {"rotated": N, "current": N, "unreadable": ["provider", ...]}: keys
 * re-sealed now, keys already under the current master key, and keys that
 * open with neither key (set them again with llm_provider_set()).
 */
Datum
llm_gateway_rotate_master_key(PG_FUNCTION_ARGS)
{
	Oid            types[2] = {TEXTOID, BYTEAOID};
	SPIPlanPtr     update;
	int64          rotated = 0;
	int64          current = 0;
	StringInfoData unreadable;
	StringInfoData out;
	uint64         n;
	MemoryContext  caller = CurrentMemoryContext;

	initStringInfo(&unreadable);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	update = SPI_prepare(update_sql, 2, types);
	if (update == NULL)
		elog(ERROR, "could not prepare the key update");
	if (SPI_execute(sealed_sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the stored keys");
	n = SPI_processed;
	{
		SPITupleTable *rows = SPI_tuptable;

		for (uint64 i = 0; i < n; i++)
		{
			bool  isnull;
			char *name = TextDatumGetCString(
				SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
			bytea *sealed = DatumGetByteaPP(
				SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));

			if (lg_secret_is_current(sealed))
				current++;
			else if (reseal(name, sealed, update))
				rotated++;
			else
			{
				MemoryContext old = MemoryContextSwitchTo(caller);

				if (unreadable.len > 0)
					appendStringInfoString(&unreadable, ", ");
				escape_json(&unreadable, name);
				MemoryContextSwitchTo(old);
			}
		}
	}
	SPI_finish();
	initStringInfo(&out);
	appendStringInfo(&out,
					 "{\"rotated\": " INT64_FORMAT
					 ", \"current\": " INT64_FORMAT ", \"unreadable\": [%s]}",
					 rotated,
					 current,
					 unreadable.data);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
