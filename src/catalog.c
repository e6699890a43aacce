/*
 * catalog.c — tenant, membership and deployment lookups for one call.
 *
 * The configuration tables are not readable by the roles that call
 * llm_complete() (they hold sealed API keys and other tenants' settings), so
 * the lookups run as the owner of schema llm_gateway, under a search_path of
 * pg_catalog and pg_temp only: a caller's own objects can never stand in for
 * the extension's tables, functions or operators.  The caller's identity is
 * captured before switching, and membership is checked against it.
 *
 * Nothing here takes a row lock: plain snapshot reads, so concurrent calls
 * for one tenant never wait on each other (DESIGN principle 3).
 */
#include "llm_gateway.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

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
	D_CONFIGURED,
	D_USABLE,
	D_DEP_ENABLED,
	D_KIND,
	D_BASE_URL,
	D_KEY,
	D_API_VERSION,
	D_TIMEOUT,
	D_CONNECT_TIMEOUT,
	D_HEADERS
};

static const char *const tenant_sql =
	"SELECT t.active, t.default_model, t.allowed_models, t.currency,"
	"       ARRAY(SELECT m.member::text FROM llm_gateway.tenant_members m"
	"              WHERE m.tenant = t.tenant)"
	"  FROM llm_gateway.tenants t WHERE t.tenant = $1";

static const char *const deployment_sql =
	"SELECT d.model, d.provider, d.upstream_model,"
	"       (d.input_usd_per_mtok * 1000000)::int8,"
	"       (d.output_usd_per_mtok * 1000000)::int8,"
	"       (coalesce(d.cached_input_usd_per_mtok, d.input_usd_per_mtok) * "
	"1000000)::int8,"
	"       (coalesce(d.cache_write_usd_per_mtok, d.input_usd_per_mtok) * "
	"1000000)::int8,"
	"       coalesce(d.max_output_tokens, 0), coalesce(d.context_window, 0),"
	"       p.name IS NOT NULL, d.enabled AND coalesce(p.enabled, false), "
	"d.enabled,"
	"       p.kind, p.base_url, p.api_key_enc, p.api_version,"
	"       coalesce(p.timeout_ms, 0), coalesce(p.connect_timeout_ms, 0),"
	"       ARRAY(SELECT h.key || ': ' || h.value FROM "
	"jsonb_each_text(p.headers) h)"
	"  FROM llm_gateway.deployments d"
	"  LEFT JOIN llm_gateway.providers p ON p.name = d.provider"
	" WHERE d.model = $1"
	" ORDER BY 11 DESC, d.priority, p.priority, d.provider";

static SPIPlanPtr tenant_plan = NULL;
static SPIPlanPtr deployment_plan = NULL;

/* ---- running as the extension's owner ---- */

static Oid
schema_owner(void)
{
	Oid       nsp = get_namespace_oid(LG_SCHEMA, true);
	HeapTuple tup;
	Oid       owner;

	if (!OidIsValid(nsp) ||
		!HeapTupleIsValid(
			tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp))))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", LG_SCHEMA),
				 errhint(
					 "Run CREATE EXTENSION llm_gateway in this database.")));
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

void
lg_owner_scope_enter(LgOwnerScope *scope)
{
	Oid owner = schema_owner();

	GetUserIdAndSecContext(&scope->saved_userid, &scope->saved_sec_context);
	SetUserIdAndSecContext(owner,
						   scope->saved_sec_context |
							   SECURITY_LOCAL_USERID_CHANGE);
	scope->guc_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path",
							 "pg_catalog, pg_temp",
							 PGC_USERSET,
							 PGC_S_SESSION,
							 GUC_ACTION_SAVE,
							 true,
							 0,
							 false);
}

void
lg_owner_scope_exit(LgOwnerScope *scope)
{
	AtEOXact_GUC(true, scope->guc_nestlevel);
	SetUserIdAndSecContext(scope->saved_userid, scope->saved_sec_context);
}

bool
lg_caller_is_admin(void)
{
	Oid caller = GetUserId();
	Oid admin = get_role_oid(LG_ADMIN_ROLE, true);

	return superuser_arg(caller) ||
		   (OidIsValid(admin) && has_privs_of_role(caller, admin));
}

/* ---- SPI helpers: results are copied into the caller's context ---- */

static SPIPlanPtr
prepare_once(SPIPlanPtr *cache, const char *sql)
{
	if (*cache == NULL)
	{
		Oid        argtypes[1] = {TEXTOID};
		SPIPlanPtr plan = SPI_prepare(sql, 1, argtypes);

		if (plan == NULL)
			elog(ERROR,
				 "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*cache = plan;
	}
	return *cache;
}

static void
run_plan(SPIPlanPtr plan, const char *arg)
{
	Datum values[1] = {CStringGetTextDatum(arg)};
	int   rc = SPI_execute_plan(plan, values, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "catalog lookup failed: %s", SPI_result_code_string(rc));
}

static Datum
col(int row, int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row],
						 SPI_tuptable->tupdesc,
						 column,
						 isnull);
}

static char *
col_text(int row, int column, MemoryContext cxt)
{
	bool          isnull;
	Datum         d = col(row, column, &isnull);
	MemoryContext old;
	char         *s;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	s = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return s;
}

static int64
col_int64(int row, int column)
{
	bool  isnull;
	Datum d = col(row, column, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static int32
col_int32(int row, int column)
{
	bool  isnull;
	Datum d = col(row, column, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static bool
col_bool(int row, int column)
{
	bool  isnull;
	Datum d = col(row, column, &isnull);

	return !isnull && DatumGetBool(d);
}

/* A text[] column as a List of C strings in cxt; NIL when NULL. */
static List *
col_text_list(int row, int column, MemoryContext cxt)
{
	bool          isnull;
	Datum         d = col(row, column, &isnull);
	Datum        *elems;
	bool         *nulls;
	int           n;
	List         *list = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	old = MemoryContextSwitchTo(cxt);
	deconstruct_array(DatumGetArrayTypeP(d),
					  TEXTOID,
					  -1,
					  false,
					  TYPALIGN_INT,
					  &elems,
					  &nulls,
					  &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			list = lappend(list, TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return list;
}

/* ---- tenant ---- */

static bool
caller_is_member(Oid caller, List *members)
{
	ListCell *lc;

	foreach (lc, members)
	{
		const char *name = (const char *) lfirst(lc);
		Oid         role;

		if (strcmp(name, "public") == 0)
			return true;
		role = get_role_oid(name, true);
		if (OidIsValid(role) && has_privs_of_role(caller, role))
			return true;
	}
	return false;
}

static bool
model_allowed(List *allowed, const char *model)
{
	ListCell *lc;

	if (allowed == NIL)
		return true;
	foreach (lc, allowed)
	{
		const char *pattern = (const char *) lfirst(lc);
		size_t      len = strlen(pattern);

		if (len > 0 && pattern[len - 1] == '*'
				? strncmp(pattern, model, len - 1) == 0
				: strcmp(pattern, model) == 0)
			return true;
	}
	return false;
}

static void
load_tenant(LgRequest    *req,
			LgTenant     *tenant,
			Oid           caller,
			bool          caller_admin,
			MemoryContext cxt)
{
	List *allowed;
	char *default_model;

	run_plan(prepare_once(&tenant_plan, tenant_sql), req->tenant);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_NOT_FOUND),
				 errmsg("tenant \"%s\" does not exist", req->tenant),
				 errhint("An administrator creates tenants with "
						 "llm_tenant_set().")));
	if (!caller_admin && !caller_is_member(caller, col_text_list(0, 5, cxt)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", req->tenant),
				 errdetail("Role \"%s\" is not a member of the tenant.",
						   GetUserNameFromId(caller, false)),
				 errhint("An administrator can add it with "
						 "llm_tenant_set('%s', '{\"members\": [...]}').",
						 req->tenant)));
	if (!col_bool(0, 1))
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_INACTIVE),
				 errmsg("tenant \"%s\" is not active", req->tenant),
				 errhint("An administrator can reactivate it with "
						 "llm_tenant_set('%s', '{\"active\": true}').",
						 req->tenant)));

	default_model = col_text(0, 2, cxt);
	allowed = col_text_list(0, 3, cxt);
	tenant->tenant = req->tenant;
	tenant->currency = col_text(0, 4, cxt);

	if (req->model == NULL)
	{
		if (default_model == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_LG_MODEL_NOT_FOUND),
					 errmsg("no model given and tenant \"%s\" has no default "
							"model",
							req->tenant),
					 errhint("Pass a model, or set one with "
							 "llm_tenant_set('%s', '{\"default_model\": "
							 "\"...\"}').",
							 req->tenant)));
		req->model = default_model;
	}
	if (!model_allowed(allowed, req->model))
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_ALLOWED),
				 errmsg("model \"%s\" is not allowed for tenant \"%s\"",
						req->model,
						req->tenant),
				 errhint("The tenant's allowed_models setting lists the "
						 "models it may use.")));
}

/* ---- deployment ---- */

static const char *
unusable_reason(int row)
{
	if (!col_bool(row, D_CONFIGURED))
		return "is not configured";
	if (!col_bool(row, D_DEP_ENABLED))
		return "serves it through a disabled deployment";
	return "is disabled";
}

static void
no_usable_deployment(const char *model, MemoryContext cxt)
{
	StringInfoData detail;
	char          *first_provider = col_text(0, D_PROVIDER, cxt);

	initStringInfo(&detail);
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(&detail,
						 "%sProvider \"%s\" %s.",
						 i > 0 ? " " : "",
						 col_text(i, D_PROVIDER, cxt),
						 unusable_reason(i));
	ereport(ERROR,
			(errcode(ERRCODE_LG_NO_DEPLOYMENT),
			 errmsg("model \"%s\" has no usable deployment", model),
			 errdetail("%s", detail.data),
			 errhint("An administrator configures a provider with "
					 "llm_provider_set('%s', kind, '{\"api_key\": ...}').",
					 first_provider)));
}

static void
load_provider(LgProvider *p, MemoryContext cxt)
{
	bool          isnull;
	Datum         key = col(0, D_KEY, &isnull);
	char         *kind = col_text(0, D_KIND, cxt);
	MemoryContext old;

	p->name = col_text(0, D_PROVIDER, cxt);
	if (!lg_kind_parse(kind, &p->kind))
		elog(ERROR, "provider \"%s\" has unknown kind \"%s\"", p->name, kind);
	p->base_url = col_text(0, D_BASE_URL, cxt);
	p->api_version = col_text(0, D_API_VERSION, cxt);
	p->timeout_ms = col_int32(0, D_TIMEOUT);
	p->connect_timeout_ms = col_int32(0, D_CONNECT_TIMEOUT);
	p->headers = col_text_list(0, D_HEADERS, cxt);
	old = MemoryContextSwitchTo(cxt);
	p->api_key_enc = isnull ? NULL : DatumGetByteaPCopy(key);
	MemoryContextSwitchTo(old);
}

static void
load_deployment(const char *model, LgDeployment *dep, MemoryContext cxt)
{
	run_plan(prepare_once(&deployment_plan, deployment_sql), model);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_FOUND),
				 errmsg("model \"%s\" does not exist", model),
				 errhint(
					 "Model ids look like \"openai/gpt-4o-mini\"; an "
					 "administrator registers models with llm_model_set().")));
	if (!col_bool(0, D_USABLE))
		no_usable_deployment(model, cxt);

	dep->model = col_text(0, D_MODEL, cxt);
	dep->upstream_model = col_text(0, D_UPSTREAM, cxt);
	dep->price.input = col_int64(0, D_PRICE_IN);
	dep->price.output = col_int64(0, D_PRICE_OUT);
	dep->price.cached_input = col_int64(0, D_PRICE_CACHED);
	dep->price.cache_write = col_int64(0, D_PRICE_WRITE);
	dep->max_output_tokens = col_int32(0, D_MAX_OUT);
	dep->context_window = col_int32(0, D_CONTEXT);
	load_provider(&dep->provider, cxt);
}

/*
 * Resolve the tenant (checking the caller may act for it) and the deployment
 * the call goes to.  Results are allocated in the caller's memory context.
 */
void
lg_catalog_resolve(LgRequest *req, LgTenant *tenant, LgDeployment *dep)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid           caller = GetUserId();
	bool          caller_admin = lg_caller_is_admin();
	LgOwnerScope  scope;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	load_tenant(req, tenant, caller, caller_admin, cxt);
	load_deployment(req->model, dep, cxt);
	SPI_finish();
	lg_owner_scope_exit(&scope);
}
