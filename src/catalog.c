/*
 * catalog.c — the tenant of a call and the caller's right to act for it.
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
#include "spi_util.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

static const char *const tenant_sql =
	"SELECT t.active, t.default_model, t.allowed_models, t.currency,"
	"       ARRAY(SELECT m.member::text FROM llm_gateway.tenant_members m"
	"              WHERE m.tenant = t.tenant), t.cache_scope"
	"  FROM llm_gateway.tenants t WHERE t.tenant = $1";

static SPIPlanPtr tenant_plan = NULL;

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

bool
lg_model_allowed(List *allowed, const char *model)
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

static List *
load_tenant(LgRequest    *req,
			LgTenant     *tenant,
			Oid           caller,
			bool          caller_admin,
			MemoryContext cxt)
{
	List *allowed;
	char *default_model;

	Oid   argtypes[1] = {TEXTOID};
	Datum args[1] = {CStringGetTextDatum(req->tenant)};
	char *scope;

	lg_spi_select(lg_spi_prepare_once(&tenant_plan, tenant_sql, 1, argtypes),
				  args);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_NOT_FOUND),
				 errmsg("tenant \"%s\" does not exist", req->tenant),
				 errhint("An administrator creates tenants with "
						 "llm_tenant_set().")));
	if (!caller_admin &&
		!caller_is_member(caller, lg_spi_text_list(0, 5, cxt)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", req->tenant),
				 errdetail("Role \"%s\" is not a member of the tenant.",
						   GetUserNameFromId(caller, false)),
				 errhint("An administrator can add it with "
						 "llm_tenant_set('%s', '{\"members\": [...]}').",
						 req->tenant)));
	if (!lg_spi_bool(0, 1))
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_INACTIVE),
				 errmsg("tenant \"%s\" is not active", req->tenant),
				 errhint("An administrator can reactivate it with "
						 "llm_tenant_set('%s', '{\"active\": true}').",
						 req->tenant)));

	default_model = lg_spi_text(0, 2, cxt);
	allowed = lg_spi_text_list(0, 3, cxt);
	tenant->tenant = req->tenant;
	tenant->currency = lg_spi_text(0, 4, cxt);
	scope = lg_spi_text(0, 6, cxt);
	tenant->cache_scope = strcmp(scope, "shared") == 0 ? LG_CACHE_SCOPE_SHARED
						  : strcmp(scope, "off") == 0  ? LG_CACHE_SCOPE_OFF
													   : LG_CACHE_SCOPE_TENANT;

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
	if (!lg_model_allowed(allowed, req->model))
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_ALLOWED),
				 errmsg("model \"%s\" is not allowed for tenant \"%s\"",
						req->model,
						req->tenant),
				 errhint("The tenant's allowed_models setting lists the "
						 "models it may use.")));
	return allowed;
}

/*
 * Resolve the tenant (checking the caller may act for it) and the plan of
 * the call: the deployments it may go to.  Results are allocated in the
 * caller's memory context.
 */
void
lg_catalog_resolve(LgRequest *req, LgTenant *tenant, LgPlan *plan)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid           caller = GetUserId();
	bool          caller_admin = lg_caller_is_admin();
	LgOwnerScope  scope;
	List         *allowed;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	allowed = load_tenant(req, tenant, caller, caller_admin, cxt);
	lg_plan_load(plan, req, allowed, cxt);
	SPI_finish();
	lg_owner_scope_exit(&scope);
}
