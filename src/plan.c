/*
 * plan.c — where a call may go: route resolution and usable deployments.
 *
 * The model argument is a route alias or a registry model id.  A route
 * gives target models, a strategy, retries and a fallback chain; a model id
 * without a route of its own takes those of the route named "default" (if
 * there is one).  Every deployment of the target models forms group 0; each
 * fallback model is a further group, tried in order.  Fallback models the
 * tenant may not use are left out.
 *
 * Deployments that cannot serve at all (provider not configured, disabled
 * or in maintenance, deployment disabled) are not candidates; if nothing is
 * left the call fails with SQLSTATE LG007 and every reason.  The order
 * within a group is the router's business (router.c): it depends on live
 * state in shared memory.
 *
 * Runs inside lg_catalog_resolve(): connected to SPI, as the schema owner.
 */
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "utils/array.h"

/* Columns of the deployment query, in order. */
enum
{
	D_MODEL = 1,
	D_PROVIDER,
	D_UPSTREAM,
	D_PRICE_IN,
	D_PRICE_OUT,
	D_PRICE_CACHED,
	D_PRICE_WRITE,
	D_MAX_OUT,
	D_CONTEXT,
	D_PRIORITY,
	D_WEIGHT,
	D_DEP_ENABLED,
	D_PROVIDER_STATUS,
	D_KIND,
	D_BASE_URL,
	D_KEY,
	D_KEY_ENV,
	D_KEY_FILE,
	D_API_VERSION,
	D_TIMEOUT,
	D_CONNECT_TIMEOUT,
	D_HEADERS,
	D_P_PRIORITY,
	D_P_WEIGHT,
	D_RPM,
	D_TPM,
	D_MAX_CONCURRENCY,
	D_BREAKER_FAILURES,
	D_BREAKER_COOLDOWN,
	D_BREAKER_SUCCESSES,
	D_BREAKER_PROBES
};

static const char *const route_sql =
	"SELECT r.name, r.strategy, r.models, r.fallback, coalesce(r.retries, -1)"
	"  FROM llm_gateway.routes r"
	" WHERE r.name IN ($1, 'default') AND r.enabled"
	" ORDER BY r.name = $1 DESC";

static const char *const deployment_sql =
	"SELECT d.model, d.provider, d.upstream_model,"
	"       (d.input_usd_per_mtok * 1000000)::int8,"
	"       (d.output_usd_per_mtok * 1000000)::int8,"
	"       (coalesce(d.cached_input_usd_per_mtok, d.input_usd_per_mtok) * "
	"1000000)::int8,"
	"       (coalesce(d.cache_write_usd_per_mtok, d.input_usd_per_mtok) * "
	"1000000)::int8,"
	"       coalesce(d.max_output_tokens, 0), coalesce(d.context_window, 0),"
	"       d.priority, d.weight, d.enabled, p.status,"
	"       p.kind, p.base_url, p.api_key_enc, p.api_key_env, p.api_key_file,"
	"       p.api_version,"
	"       coalesce(p.timeout_ms, 0), coalesce(p.connect_timeout_ms, 0),"
	"       ARRAY(SELECT h.key || ': ' || h.value FROM "
	"jsonb_each_text(p.headers) h),"
	"       p.priority, p.weight, coalesce(p.rpm, 0), coalesce(p.tpm, 0),"
	"       coalesce(p.max_concurrency, 0), p.breaker_failures, "
	"p.breaker_cooldown_ms,"
	"       p.breaker_successes, p.breaker_probes"
	"  FROM llm_gateway.deployments d"
	"  LEFT JOIN llm_gateway.providers p ON p.name = d.provider"
	" WHERE d.model = ANY ($1)"
	" ORDER BY d.model, d.provider";

static SPIPlanPtr route_plan = NULL;
static SPIPlanPtr deployment_plan = NULL;

static const char *const strategy_names[] = {"priority",
											 "weighted",
											 "least_busy",
											 "lowest_latency",
											 "lowest_cost"};

const char *
lg_strategy_name(LgStrategy strategy)
{
	return strategy_names[strategy];
}

static LgStrategy
strategy_parse(const char *name)
{
	for (int i = 0; i < (int) lengthof(strategy_names); i++)
		if (strcmp(name, strategy_names[i]) == 0)
			return (LgStrategy) i;
	return LG_STRATEGY_PRIORITY;
}

/* ---- the route ---- */

typedef struct RouteInfo
{
	List *models;   /* group 0 */
	List *fallback; /* one group each */
} RouteInfo;

static void
load_route(LgPlan       *plan,
		   RouteInfo    *route,
		   const char   *requested,
		   MemoryContext cxt)
{
	Oid   argtypes[1] = {TEXTOID};
	Datum args[1] = {CStringGetTextDatum(requested)};
	char *name;

	plan->requested = pstrdup(requested);
	plan->strategy = LG_STRATEGY_PRIORITY;
	plan->retries = -1;
	route->models = list_make1(plan->requested);
	route->fallback = NIL;

	lg_spi_select(lg_spi_prepare_once(&route_plan, route_sql, 1, argtypes),
				  args);
	if (SPI_processed == 0)
		return;
	name = lg_spi_text(0, 1, cxt);
	plan->route = name;
	plan->strategy = strategy_parse(lg_spi_text(0, 2, cxt));
	plan->retries = lg_spi_int32(0, 5);
	route->fallback = lg_spi_text_list(0, 4, cxt);
	if (strcmp(name, requested) == 0 && lg_spi_text_list(0, 3, cxt) != NIL)
		route->models = lg_spi_text_list(0, 3, cxt);
}

static int
compare_cstrings(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* The canonical target set, for the cache key: sorted, comma-joined. */
static char *
canonical_models(List *models)
{
	List          *sorted = list_copy(models);
	StringInfoData b;
	ListCell      *lc;

	list_sort(sorted, compare_cstrings);
	initStringInfo(&b);
	foreach (lc, sorted)
	{
		if (foreach_current_index (lc) > 0)
			appendStringInfoChar(&b, ',');
		appendStringInfoString(&b, (const char *) lfirst(lc));
	}
	return b.data;
}

/* ---- deployments ---- */

static const char *
unusable_reason(int row, MemoryContext cxt)
{
	char *status = lg_spi_text(row, D_PROVIDER_STATUS, cxt);

	if (status == NULL)
		return "is not configured";
	if (!lg_spi_bool(row, D_DEP_ENABLED))
		return "serves it through a disabled deployment";
	if (strcmp(status, "maintenance") == 0)
		return "is in maintenance";
	return "is disabled";
}

static bool
row_usable(int row, MemoryContext cxt)
{
	char *status = lg_spi_text(row, D_PROVIDER_STATUS, cxt);

	return status != NULL && strcmp(status, "active") == 0 &&
		   lg_spi_bool(row, D_DEP_ENABLED);
}

static void
load_provider(LgProvider *p, int row, MemoryContext cxt)
{
	bool          isnull;
	Datum         key = lg_spi_col(row, D_KEY, &isnull);
	char         *kind = lg_spi_text(row, D_KIND, cxt);
	MemoryContext old;

	p->name = lg_spi_text(row, D_PROVIDER, cxt);
	if (!lg_kind_parse(kind, &p->kind))
		elog(ERROR, "provider \"%s\" has unknown kind \"%s\"", p->name, kind);
	p->base_url = lg_spi_text(row, D_BASE_URL, cxt);
	p->api_key_env = lg_spi_text(row, D_KEY_ENV, cxt);
	p->api_key_file = lg_spi_text(row, D_KEY_FILE, cxt);
	p->api_version = lg_spi_text(row, D_API_VERSION, cxt);
	p->timeout_ms = lg_spi_int32(row, D_TIMEOUT);
	p->connect_timeout_ms = lg_spi_int32(row, D_CONNECT_TIMEOUT);
	p->headers = lg_spi_text_list(row, D_HEADERS, cxt);
	p->priority = lg_spi_int32(row, D_P_PRIORITY);
	p->weight = lg_spi_int32(row, D_P_WEIGHT);
	p->rpm = lg_spi_int32(row, D_RPM);
	p->tpm = lg_spi_int32(row, D_TPM);
	p->max_concurrency = lg_spi_int32(row, D_MAX_CONCURRENCY);
	p->breaker_failures = lg_spi_int32(row, D_BREAKER_FAILURES);
	p->breaker_cooldown_ms = lg_spi_int32(row, D_BREAKER_COOLDOWN);
	p->breaker_successes = lg_spi_int32(row, D_BREAKER_SUCCESSES);
	p->breaker_probes = lg_spi_int32(row, D_BREAKER_PROBES);
	old = MemoryContextSwitchTo(cxt);
	p->api_key_enc = isnull ? NULL : DatumGetByteaPCopy(key);
	MemoryContextSwitchTo(old);
}

static void
load_deployment(LgDeployment *dep, int row, int group, MemoryContext cxt)
{
	dep->model = lg_spi_text(row, D_MODEL, cxt);
	dep->upstream_model = lg_spi_text(row, D_UPSTREAM, cxt);
	dep->price.input = lg_spi_int64(row, D_PRICE_IN);
	dep->price.output = lg_spi_int64(row, D_PRICE_OUT);
	dep->price.cached_input = lg_spi_int64(row, D_PRICE_CACHED);
	dep->price.cache_write = lg_spi_int64(row, D_PRICE_WRITE);
	dep->max_output_tokens = lg_spi_int32(row, D_MAX_OUT);
	dep->context_window = lg_spi_int32(row, D_CONTEXT);
	dep->priority = lg_spi_int32(row, D_PRIORITY);
	dep->weight = lg_spi_int32(row, D_WEIGHT);
	dep->group = group;
	load_provider(&dep->provider, row, cxt);
}

static Datum
text_array(List *strings)
{
	Datum    *elems = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	ListCell *lc;

	foreach (lc, strings)
		elems[foreach_current_index (lc)] =
			CStringGetTextDatum((const char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems,
										   list_length(strings),
										   TEXTOID,
										   -1,
										   false,
										   TYPALIGN_INT));
}

static void
no_usable_deployment(const LgPlan *plan,
					 StringInfo    reasons,
					 const char   *first_provider)
{
	ereport(ERROR,
			(errcode(ERRCODE_LG_NO_DEPLOYMENT),
			 errmsg("model \"%s\" has no usable deployment", plan->requested),
			 errdetail("%s", reasons->data),
			 errhint("An administrator configures a provider with "
					 "llm_provider_set('%s', kind, "
					 "'{\"api_key\": ...}'), and takes one out of maintenance "
					 "with "
					 "'{\"status\": \"active\"}'.",
					 first_provider)));
}

/*
 * Fill plan->cands from the deployments of every group's model.  Rows come
 * ordered by model; groups are matched by name.
 */
static void
collect_candidates(LgPlan *plan, List *groups, MemoryContext cxt)
{
	StringInfoData reasons;
	char          *first_provider = NULL;
	bool           primary_known = false;
	MemoryContext  old;

	initStringInfo(&reasons);
	old = MemoryContextSwitchTo(cxt);
	plan->cands = palloc0(sizeof(LgDeployment) * Max(SPI_processed, 1));
	MemoryContextSwitchTo(old);
	plan->ncands = 0;
	for (int g = 0; g < list_length(groups); g++)
	{
		List *models = (List *) list_nth(groups, g);

		for (uint64 row = 0; row < SPI_processed; row++)
		{
			char *model = lg_spi_text(row, D_MODEL, cxt);

			if (!list_member(models, makeString(model)))
				continue;
			primary_known |= (g == 0);
			if (first_provider == NULL)
				first_provider = lg_spi_text(row, D_PROVIDER, cxt);
			if (row_usable(row, cxt))
				load_deployment(&plan->cands[plan->ncands++], row, g, cxt);
			else
				appendStringInfo(&reasons,
								 "%sProvider \"%s\" %s.",
								 reasons.len ? " " : "",
								 lg_spi_text(row, D_PROVIDER, cxt),
								 unusable_reason(row, cxt));
		}
	}
	if (!primary_known)
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_FOUND),
				 errmsg("model \"%s\" does not exist", plan->requested),
				 errhint("Model ids look like \"openai/gpt-4o-mini\"; an "
						 "administrator registers "
						 "models with llm_model_set() and aliases with "
						 "llm_route_set().")));
	if (plan->ncands == 0)
		no_usable_deployment(plan, &reasons, first_provider);
}

/* A list of String nodes, for list_member() matching. */
static List *
string_nodes(List *cstrings)
{
	List     *nodes = NIL;
	ListCell *lc;

	foreach (lc, cstrings)
		nodes = lappend(nodes, makeString((char *) lfirst(lc)));
	return nodes;
}

void
lg_plan_load(LgPlan          *plan,
			 const LgRequest *req,
			 List            *allowed,
			 MemoryContext    cxt)
{
	Oid           argtypes[1] = {TEXTARRAYOID};
	RouteInfo     route;
	List         *groups;
	List         *all;
	ListCell     *lc;
	Datum         args[1];
	MemoryContext old = MemoryContextSwitchTo(cxt); /* not SPI's */

	memset(plan, 0, sizeof(*plan));
	load_route(plan, &route, req->model, cxt);
	/* an SPI call returns to SPI's own context, which SPI_finish frees */
	MemoryContextSwitchTo(cxt);
	plan->cache_model = canonical_models(route.models);
	groups = list_make1(string_nodes(route.models));
	all = list_copy(route.models);
	foreach (lc, route.fallback)
	{
		char *model = (char *) lfirst(lc);

		if (!lg_model_allowed(allowed, model) ||
			list_member(string_nodes(all), makeString(model)))
			continue;
		groups = lappend(groups, list_make1(makeString(model)));
		all = lappend(all, model);
	}
	args[0] = text_array(all);
	lg_spi_select(lg_spi_prepare_once(&deployment_plan,
									  deployment_sql,
									  1,
									  argtypes),
				  args);
	collect_candidates(plan, groups, cxt);
	MemoryContextSwitchTo(old);
}
