/*
 * cache_read.c — reading a response-cache entry without SPI.
 *
 * A cache hit is the cheapest call there is, and the lookup was most of
 * it: planning aside, the executor's start and end for a one-row SELECT
 * cost several times the index probe itself.  So the entry is fetched here
 * straight through the primary key of llm_gateway.cache, with a fresh
 * snapshot taken after a CommandCounterIncrement (what SPI does for a
 * statement that is not read-only): an entry stored by an earlier call of
 * the same statement, or committed meanwhile, is found.
 *
 * This is the extension reading its own table, as its own code: no
 * privilege is checked (the table is readable by no caller), no row-level
 * security applies (it has none).  The columns are found by name once per
 * backend and relation.
 */
#include "llm_gateway.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* The columns read, by name; their numbers are looked up once. */
enum
{
	C_MODEL,
	C_PROVIDER,
	C_UPSTREAM,
	C_CONTENT,
	C_FINISH,
	C_INPUT,
	C_CACHED,
	C_WRITE,
	C_REASONING,
	C_OUTPUT,
	C_COST,
	C_EXPIRES,
	C_LAST_HIT,
	C_NCOLS
};

static const char *const column_names[C_NCOLS] = {"model",
												  "provider",
												  "upstream_model",
												  "content",
												  "finish_reason",
												  "input_tokens",
												  "cached_tokens",
												  "cache_write_tokens",
												  "reasoning_tokens",
												  "output_tokens",
												  "cost_usd",
												  "expires_at",
												  "last_hit_at"};

static Oid        columns_of = InvalidOid; /* the relation they belong to */
static AttrNumber columns[C_NCOLS];

static void
find_columns(Relation rel)
{
	if (columns_of == RelationGetRelid(rel))
		return;
	for (int c = 0; c < C_NCOLS; c++)
	{
		columns[c] = get_attnum(RelationGetRelid(rel), column_names[c]);
		if (columns[c] == InvalidAttrNumber)
			elog(ERROR,
				 "llm_gateway.cache has no column \"%s\"",
				 column_names[c]);
	}
	columns_of = RelationGetRelid(rel);
}

static Datum
col(TupleTableSlot *slot, int c, bool *isnull)
{
	return slot_getattr(slot, columns[c], isnull);
}

static char *
col_text(TupleTableSlot *slot, int c)
{
	bool  isnull;
	Datum d = col(slot, c, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int64
col_int8(TupleTableSlot *slot, int c)
{
	bool  isnull;
	Datum d = col(slot, c, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* numeric USD as int64 pico-USD */
static int64
col_picousd(TupleTableSlot *slot, int c)
{
	bool  isnull;
	Datum d = col(slot, c, &isnull);

	if (isnull)
		return 0;
	d = DirectFunctionCall2(numeric_mul,
							d,
							NumericGetDatum(int64_to_numeric(1000000000000)));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, d));
}

static void
read_entry(TupleTableSlot *slot, LgCacheHit *hit)
{
	hit->model = col_text(slot, C_MODEL);
	hit->provider = col_text(slot, C_PROVIDER);
	hit->upstream_model = col_text(slot, C_UPSTREAM);
	hit->content = col_text(slot, C_CONTENT);
	hit->finish_reason = col_text(slot, C_FINISH);
	hit->usage.input_tokens = col_int8(slot, C_INPUT);
	hit->usage.cached_tokens = col_int8(slot, C_CACHED);
	hit->usage.cache_write_tokens = col_int8(slot, C_WRITE);
	hit->usage.reasoning_tokens = col_int8(slot, C_REASONING);
	hit->usage.output_tokens = col_int8(slot, C_OUTPUT);
	hit->cost_picousd = col_picousd(slot, C_COST);
}

/*
 * The unexpired entry of this key into *hit: true if there is one, with
 * *last_hit_at set to when it was last marked hit.
 */
bool
lg_cache_read(bytea *key, LgCacheHit *hit, TimestampTz *last_hit_at)
{
	Oid             nsp = get_namespace_oid(LG_SCHEMA, false);
	Oid             relid = get_relname_relid("cache", nsp);
	Relation        rel;
	Relation        index;
	Snapshot        snapshot;
	IndexScanDesc   scan;
	TupleTableSlot *slot;
	ScanKeyData     skey;
	bool            found = false;

	if (!OidIsValid(relid))
		elog(ERROR, "llm_gateway.cache does not exist");
	rel = table_open(relid, AccessShareLock);
	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	find_columns(rel);
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyInit(&skey,
				1,
				BTEqualStrategyNumber,
				F_BYTEAEQ,
				PointerGetDatum(key));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	slot = table_slot_create(rel, NULL);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool        isnull;
		TimestampTz expires =
			DatumGetTimestampTz(col(slot, C_EXPIRES, &isnull));

		if (!isnull && expires > GetCurrentTimestamp())
		{
			read_entry(slot, hit);
			*last_hit_at = DatumGetTimestampTz(col(slot, C_LAST_HIT, &isnull));
			found = true;
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}
