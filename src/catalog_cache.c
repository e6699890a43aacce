/*
 * catalog_cache.c — a backend's copy of what the catalog said about a call,
 * so that a steady stream of calls for one tenant, agent and model reads no
 * table at all (the lookups were most of a call's own cost).
 *
 * An entry holds the resolution of (tenant, agent, requested model) that
 * catalog.c built: the tenant's row, the plan, the limits.  It is good
 * while
 *   - no configuration change has committed since it was made: every table
 *     a resolution reads has a trigger (llm_gateway.config_changed) that
 *     marks the transaction that changes a row, and its commit bumps a
 *     generation counter in shared memory, which every entry carries;
 *   - the day and every budget period it was made in last (their bounds are
 *     part of it);
 *   - it is younger than llm_gateway.catalog_cache_ttl: a safety net for
 *     changes no trigger sees (COMMIT PREPARED of a change, replication
 *     with session_replication_role = replica);
 *   - the extension is the same (the schema's oid), and so are the settings
 *     a resolution reads (llm_gateway.fallback_rates).
 * The generation is read before the catalog is, and bumped only once a
 * change is visible, so an entry is never newer than its generation says.
 * A transaction that changed the configuration itself neither reads nor
 * fills the cache until it ends (it sees what others do not); one whose
 * snapshot is older than its statements (REPEATABLE READ) fills none.
 *
 * What the cache returns is its own: callers copy what they change.  At
 * most CACHE_MAX entries per backend; past that the cache is emptied.
 * Locking: the counter is an atomic; nothing else is shared.
 */
#include "catalog_cache.h"
#include "shmem.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#define CACHE_MAX 256

PG_FUNCTION_INFO_V1(llm_gateway_config_changed);

int lg_catalog_cache_ttl_ms = 10000;

typedef struct CacheEntry
{
	uint64        hash; /* the hash key */
	char         *key;  /* tenant, agent, model, \x1f-separated */
	uint64        generation;
	Oid           nsp;
	char         *settings; /* what settings_now() said when it was made */
	TimestampTz   valid_until;
	MemoryContext cxt;
	LgResolution *res;
} CacheEntry;

static MemoryContext cache_root = NULL;
static HTAB         *cache = NULL;
static bool changed_here = false; /* this transaction changed config */
static bool callback_registered = false;

/* ---- invalidation ---- */

static void
config_xact_callback(XactEvent event, pg_attribute_unused() void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* committed, so visible to every snapshot taken from now */
			if (changed_here && lg_shared != NULL)
				pg_atomic_fetch_add_u64(&lg_shared->config_generation, 1);
			changed_here = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			changed_here = false;
			break;
		default:
			break;
	}
}

/*
 * llm_gateway.config_changed() — row (and TRUNCATE) trigger of every
 * configuration table: the next commit tells every backend's cache.
 */
Datum
llm_gateway_config_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("config_changed() is a trigger function")));
	if (!callback_registered)
	{
		RegisterXactCallback(config_xact_callback, NULL);
		callback_registered = true;
	}
	changed_here = true;
	return PointerGetDatum(NULL);
}

uint64
lg_catalog_generation(void)
{
	return pg_atomic_read_u64(&lg_shared->config_generation);
}

bool
lg_catalog_cache_readable(void)
{
	return lg_catalog_cache_ttl_ms > 0 && !changed_here;
}

bool
lg_catalog_cache_fillable(void)
{
	return lg_catalog_cache_readable() && !IsolationUsesXactSnapshot();
}

/* ---- the entries ---- */

/* The settings a resolution depends on. */
static const char *
settings_now(void)
{
	return lg_fallback_rates ? lg_fallback_rates : "";
}

static char *
make_key(const char *tenant, const char *agent, const char *model)
{
	return psprintf("%s\x1f%s\x1f%s",
					tenant,
					agent ? agent : "\x1e",
					model ? model : "\x1e");
}

static void
cache_reset(void)
{
	if (cache_root != NULL)
		MemoryContextReset(cache_root);
	cache = NULL;
}

static HTAB *
cache_table(void)
{
	HASHCTL ctl;

	if (cache != NULL)
		return cache;
	if (cache_root == NULL)
		cache_root = AllocSetContextCreate(CacheMemoryContext,
										   "llm_gateway catalog cache",
										   ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = cache_root;
	cache = hash_create("llm_gateway catalog cache",
						CACHE_MAX,
						&ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return cache;
}

static void
drop_entry(CacheEntry *e)
{
	if (e->cxt != NULL)
		MemoryContextDelete(e->cxt);
	pfree(e->key);
	pfree(e->settings);
	hash_search(cache, &e->hash, HASH_REMOVE, NULL);
}

static bool
entry_good(const CacheEntry *e)
{
	return e->generation == lg_catalog_generation() &&
		   e->nsp == get_namespace_oid(LG_SCHEMA, true) &&
		   strcmp(e->settings, settings_now()) == 0 &&
		   GetCurrentTimestamp() < e->valid_until;
}

/* The cached resolution, or NULL. */
LgResolution *
lg_catalog_cache_get(const char *tenant, const char *agent, const char *model)
{
	char       *key;
	uint64      hash;
	CacheEntry *e;

	if (cache == NULL || !lg_catalog_cache_readable())
		return NULL;
	key = make_key(tenant, agent, model);
	hash = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
	e = hash_search(cache, &hash, HASH_FIND, NULL);
	if (e != NULL && strcmp(e->key, key) != 0)
		e = NULL; /* another key with the same hash */
	else if (e != NULL && !entry_good(e))
	{
		drop_entry(e);
		e = NULL;
	}
	pfree(key);
	return e ? e->res : NULL;
}

/* The earliest moment the resolution goes stale by itself. */
static TimestampTz
valid_until(const LgResolution *res, TimestampTz now)
{
	TimestampTz until =
		TimestampTzPlusMilliseconds(now, lg_catalog_cache_ttl_ms);

	if (res->row.src.day_end != 0)
		until = Min(until, res->row.src.day_end);
	for (int i = 0; i < res->limits.nbudgets; i++)
		until = Min(until, res->limits.budgets[i].period_end);
	return until;
}

/*
 * Keep res, made in cxt under generation, for the key; cxt becomes the
 * cache's (so it must be a context of its own, holding nothing else).
 */
void
lg_catalog_cache_put(const char   *tenant,
					 const char   *agent,
					 const char   *model,
					 uint64        generation,
					 LgResolution *res,
					 MemoryContext cxt)
{
	HTAB       *table;
	char       *key;
	uint64      hash;
	CacheEntry *e;
	bool        found;

	if (!lg_catalog_cache_fillable())
		return;
	table = cache_table();
	if (hash_get_num_entries(table) >= CACHE_MAX)
		table = (cache_reset(), cache_table());
	key = MemoryContextStrdup(cache_root, make_key(tenant, agent, model));
	hash = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
	e = hash_search(table, &hash, HASH_ENTER, &found);
	if (found)
	{
		MemoryContextDelete(e->cxt);
		pfree(e->key);
		pfree(e->settings);
	}
	e->key = key;
	e->settings = MemoryContextStrdup(cache_root, settings_now());
	e->generation = generation;
	e->nsp = get_namespace_oid(LG_SCHEMA, true);
	e->valid_until = valid_until(res, GetCurrentTimestamp());
	e->cxt = cxt;
	e->res = res;
	MemoryContextSetParent(cxt, cache_root);
}
