/*
 * cache.c — the exact-match response cache.
 *
 * Key: SHA-256 over the canonical request (cache_key.c).
 *
 * Entries live in the UNLOGGED table llm_gateway.cache, written in the
 * caller's transaction; only complete, successful answers of the route's
 * own models are stored (not a fallback model's, not a truncated or
 * filtered one).  A hit refreshes the entry's last_hit_at at most every
 * LAST_HIT_STEP, with SKIP LOCKED, so concurrent hits on one entry never
 * wait on each other.  The worker deletes expired entries and then the
 * least recently used ones beyond llm_gateway.cache_max_size.
 */
#include "spi_util.h"

#include "catalog/pg_type.h"

#define LAST_HIT_STEP    "10 seconds"
#define LAST_HIT_STEP_MS 10000

static const char *const touch_sql =
	"UPDATE llm_gateway.cache SET last_hit_at = clock_timestamp(), hits = "
	"hits + 1"
	" WHERE key = (SELECT key FROM llm_gateway.cache WHERE key = $1"
	"               AND last_hit_at < clock_timestamp() - interval "
	"'" LAST_HIT_STEP "'"
	"               FOR UPDATE SKIP LOCKED)";

static const char *const store_sql =
	"INSERT INTO llm_gateway.cache (key, scope, model, provider, "
	"upstream_model, content,"
	"  finish_reason, input_tokens, cached_tokens, cache_write_tokens, "
	"reasoning_tokens,"
	"  output_tokens, cost_usd, latency_ms, bytes, expires_at, created_at, "
	"last_hit_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
	"  $13::numeric / 1000000000000, round($14::numeric, 3), $15,"
	"  clock_timestamp() + make_interval(secs => $16), clock_timestamp(), "
	"clock_timestamp())"
	" ON CONFLICT (key) DO UPDATE SET scope = EXCLUDED.scope, model = "
	"EXCLUDED.model,"
	"  provider = EXCLUDED.provider, upstream_model = EXCLUDED.upstream_model,"
	"  content = EXCLUDED.content, finish_reason = EXCLUDED.finish_reason,"
	"  input_tokens = EXCLUDED.input_tokens, cached_tokens = "
	"EXCLUDED.cached_tokens,"
	"  cache_write_tokens = EXCLUDED.cache_write_tokens,"
	"  reasoning_tokens = EXCLUDED.reasoning_tokens, output_tokens = "
	"EXCLUDED.output_tokens,"
	"  cost_usd = EXCLUDED.cost_usd, latency_ms = EXCLUDED.latency_ms,"
	"  bytes = EXCLUDED.bytes, created_at = clock_timestamp(),"
	"  expires_at = EXCLUDED.expires_at, last_hit_at = clock_timestamp(), "
	"hits = 0";

static SPIPlanPtr touch_plan = NULL;
static SPIPlanPtr store_plan = NULL;

/*
 * Decide whether this call uses the cache and compute its key; false when
 * it does not (disabled, "bypass", tenant scope "off", TTL 0).
 */
bool
lg_cache_prepare(LgCacheKey      *key,
				 const LgRequest *req,
				 const LgPlan    *plan,
				 const LgTenant  *tenant)
{
	memset(key, 0, sizeof(*key));
	key->ttl_s =
		req->opt.cache_ttl_s >= 0 ? req->opt.cache_ttl_s : lg_cache_ttl_s;
	if (!lg_cache_enabled || req->opt.cache == LG_CACHE_BYPASS ||
		tenant->cache_scope == LG_CACHE_SCOPE_OFF || key->ttl_s == 0)
		return false;
	key->scope =
		tenant->cache_scope == LG_CACHE_SCOPE_SHARED ? "*" : tenant->tenant;
	key->lookup = req->opt.cache == LG_CACHE_DEFAULT;
	if (!lg_cache_key_hash(key->hash,
						   key->scope,
						   req,
						   plan->cache_model,
						   req->opt.max_tokens > 0
							   ? psprintf("%d", req->opt.max_tokens)
							   : NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a cache key")));
	return true;
}

static Datum
key_datum(const LgCacheKey *key)
{
	bytea *b = palloc(VARHDRSZ + sizeof(key->hash));

	SET_VARSIZE(b, VARHDRSZ + sizeof(key->hash));
	memcpy(VARDATA(b), key->hash, sizeof(key->hash));
	return PointerGetDatum(b);
}

/* ---- lookup ---- */

/*
 * The stored answer for this key, if any and not expired (read without SPI:
 * cache_read.c).  One hit in many moves the entry's last_hit_at: the first
 * after it is LAST_HIT_STEP old.
 */
bool
lg_cache_lookup(const LgCacheKey *key, LgCacheHit *hit)
{
	Oid          argtypes[1] = {BYTEAOID};
	Datum        args[1];
	TimestampTz  last_hit_at;
	LgOwnerScope scope;

	if (!key->lookup)
		return false;
	args[0] = key_datum(key);
	if (!lg_cache_read(DatumGetByteaPP(args[0]), hit, &last_hit_at))
		return false;
	if (last_hit_at >=
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -LAST_HIT_STEP_MS))
		return true;
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(lg_spi_prepare_once(&touch_plan,
											 touch_sql,
											 1,
											 argtypes),
						 args,
						 NULL,
						 false,
						 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not refresh a cache entry");
	SPI_finish();
	lg_owner_scope_exit(&scope);
	return true;
}

/* ---- store ---- */

/* Only complete answers of the route's own models are worth keeping. */
static bool
cacheable(const LgAttempt *a)
{
	return a->status == LG_ATTEMPT_OK && !a->cached && a->dep->group == 0 &&
		   a->reply.content != NULL && a->reply.finish_reason != NULL &&
		   strcmp(a->reply.finish_reason, "stop") == 0;
}

void
lg_cache_store(const LgCacheKey *key, const LgAttempt *a)
{
	Oid          argtypes[16] = {BYTEAOID,
								 TEXTOID,
								 TEXTOID,
								 TEXTOID,
								 TEXTOID,
								 TEXTOID,
								 TEXTOID,
								 INT8OID,
								 INT8OID,
								 INT8OID,
								 INT8OID,
								 INT8OID,
								 INT8OID,
								 FLOAT8OID,
								 INT4OID,
								 INT4OID};
	Datum        v[16];
	char         n[16];
	LgOwnerScope scope;
	const char  *upstream = a->reply.upstream_model ? a->reply.upstream_model
													: a->dep->upstream_model;

	if (!cacheable(a))
		return;
	memset(n, ' ', sizeof(n));
	v[0] = key_datum(key);
	v[1] = CStringGetTextDatum(key->scope);
	v[2] = CStringGetTextDatum(a->dep->model);
	v[3] = CStringGetTextDatum(a->dep->provider.name);
	v[4] = CStringGetTextDatum(upstream);
	v[5] = CStringGetTextDatum(a->reply.content);
	v[6] = CStringGetTextDatum(a->reply.finish_reason);
	v[7] = Int64GetDatum(a->reply.usage.input_tokens);
	v[8] = Int64GetDatum(a->reply.usage.cached_tokens);
	v[9] = Int64GetDatum(a->reply.usage.cache_write_tokens);
	v[10] = Int64GetDatum(a->reply.usage.reasoning_tokens);
	v[11] = Int64GetDatum(a->reply.usage.output_tokens);
	v[12] = Int64GetDatum(a->cost_picousd);
	v[13] = Float8GetDatum(a->latency_ms);
	v[14] = Int32GetDatum(
		(int32) Min(strlen(a->reply.content) + 256, (size_t) PG_INT32_MAX));
	v[15] = Int32GetDatum(key->ttl_s);
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(lg_spi_prepare_once(&store_plan,
											 store_sql,
											 16,
											 argtypes),
						 v,
						 n,
						 false,
						 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store a cache entry");
	SPI_finish();
	lg_owner_scope_exit(&scope);
}

/* ---- eviction (the worker's pass) ---- */

/*
 * Delete expired entries, then the least recently used ones until the
 * cache holds at most llm_gateway.cache_max_size.  Returns rows deleted.
 */
int64
lg_cache_evict(void)
{
	Oid          argtypes[1] = {INT8OID};
	Datum        args[1] = {Int64GetDatum((int64) lg_cache_max_kb * 1024)};
	int64        n;
	LgOwnerScope scope;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("DELETE FROM llm_gateway.cache WHERE expires_at <= "
					"clock_timestamp()",
					false,
					0) != SPI_OK_DELETE)
		elog(ERROR, "could not expire cache entries");
	n = (int64) SPI_processed;
	if (SPI_execute_with_args("DELETE FROM llm_gateway.cache c USING ("
							  "  SELECT key, sum(bytes) OVER (ORDER BY "
							  "last_hit_at DESC, key)"
							  "         AS running FROM llm_gateway.cache) o"
							  " WHERE c.key = o.key AND o.running > $1",
							  1,
							  argtypes,
							  args,
							  NULL,
							  false,
							  0) != SPI_OK_DELETE)
		elog(ERROR, "could not evict cache entries");
	n += (int64) SPI_processed;
	SPI_finish();
	lg_owner_scope_exit(&scope);
	return n;
}
