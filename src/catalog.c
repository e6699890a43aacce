/*
 * catalog.c — the tenant of a call and the caller's right to act for it.
 *
 * One query reads the tenant with what it inherits from its plan, the
 * call's agent, the stored exchange rate and today's bounds in the
 * tenant's time zone; the route and deployments (plan.c) and the budgets
 * (account_catalog.c) follow in the same SPI connection.
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
#include "catalog_cache.h"
#include "spi_util.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/* Columns of tenant_sql, numbered from 1 as SPI does. */
enum
{
	TC_ACTIVE = 1,
	TC_DEFAULT_MODEL,
	TC_ALLOWED_MODELS,
	TC_CURRENCY,
	TC_MEMBERS,
	TC_CACHE_SCOPE,
	TC_RPM, /* rpm, tpm, rpd, tpd, max_concurrency: the tenant's or its plan's */
	TC_TIMEZONE = TC_RPM + 5,
	TC_PLAN,
	TC_SUSPENDED_UNTIL,
	TC_SUSPENDED_REASON,
	TC_LIFTED_AT,
	TC_AGENT_KNOWN,
	TC_AGENT_ACTIVE,
	TC_AGENT_MODEL,
	TC_AGENT_RPM,               /* the agent's own five */
	TC_RATE = TC_AGENT_RPM + 5, /* the stored exchange rate, if any */
	TC_RATE_SOURCE,
	TC_RATE_FAILED,
	TC_DAY_START,
	TC_DAY_END,
	TC_HAS_BUDGETS,
	TC_PRIVACY
};

static const char *const tenant_sql =
	"SELECT t.active, t.default_model,"
	"       coalesce(t.allowed_models, p.allowed_models), t.currency,"
	"       ARRAY(SELECT m.member::text FROM llm_gateway.tenant_members m"
	"              WHERE m.tenant = t.tenant), t.cache_scope,"
	"       coalesce(t.rpm, p.rpm), coalesce(t.tpm, p.tpm),"
	"       coalesce(t.rpd, p.rpd)::int8, coalesce(t.tpd, p.tpd),"
	"       coalesce(t.max_concurrency, p.max_concurrency),"
	"       t.timezone, t.plan, t.suspended_until, t.suspended_reason,"
	"       t.suspension_lifted_at,"
	"       a.agent IS NOT NULL, a.active, a.preferred_model,"
	"       a.rpm, a.tpm, a.rpd::int8, a.tpd, a.max_concurrency,"
	"       r.rate::text, r.source, r.last_error IS NOT NULL,"
	"       d.s AT TIME ZONE t.timezone,"
	"       (d.s + interval '1 day') AT TIME ZONE t.timezone,"
	"       EXISTS (SELECT 1 FROM llm_gateway.budgets b"
	"                WHERE b.tenant = t.tenant OR b.plan = t.plan),"
	"       t.privacy"
	"  FROM llm_gateway.tenants t"
	"  LEFT JOIN llm_gateway.plans p ON p.plan = t.plan"
	"  LEFT JOIN llm_gateway.agents a ON a.tenant = t.tenant AND a.agent = $2"
	"  LEFT JOIN llm_gateway.exchange_rates r ON r.currency = t.currency"
	/* today in the tenant's time zone, as llm_gateway.period_bounds() */
	"  CROSS JOIN LATERAL (SELECT date_trunc('day', clock_timestamp()"
	"                                AT TIME ZONE t.timezone) AS s) d"
	" WHERE t.tenant = $1";

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
	/* our queries are small; on a large ledger their estimates are not */
	(void) set_config_option("jit",
							 "off",
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

/* ---- tenant ---- */

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

static void
quota_config(LgQuotaConfig *q, int col)
{
	q->rpm = lg_spi_int32(0, col);
	q->tpm = lg_spi_int32(0, col + 1);
	q->rpd = lg_spi_int64(0, col + 2);
	q->tpd = lg_spi_int64(0, col + 3);
	q->max_concurrency = lg_spi_int32(0, col + 4);
}

static TimestampTz
timestamp_col(int col)
{
	bool  isnull;
	Datum d = lg_spi_col(0, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* The tenant's row for the call, into row (in cxt); ERROR if none. */
static void
read_tenant_row(const char   *tenant_id,
				const char   *agent,
				LgTenantRow  *row,
				MemoryContext cxt)
{
	Oid             argtypes[2] = {TEXTOID, TEXTOID};
	Datum           args[2];
	LgTenant       *tenant = &row->tenant;
	LgLimitsSource *src = &row->src;
	char           *scope;
	char           *privacy;
	MemoryContext   old;

	args[0] = CStringGetTextDatum(tenant_id);
	args[1] = CStringGetTextDatum(agent ? agent : "");
	lg_spi_select(lg_spi_prepare_once(&tenant_plan, tenant_sql, 2, argtypes),
				  args);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_NOT_FOUND),
				 errmsg("tenant \"%s\" does not exist", tenant_id),
				 errhint("An administrator creates tenants with "
						 "llm_tenant_set().")));
	row->active = lg_spi_bool(0, TC_ACTIVE);
	row->default_model = lg_spi_text(0, TC_DEFAULT_MODEL, cxt);
	row->allowed = lg_spi_text_list(0, TC_ALLOWED_MODELS, cxt);
	row->members = lg_spi_text_list(0, TC_MEMBERS, cxt);
	row->agent_known = lg_spi_bool(0, TC_AGENT_KNOWN);
	row->agent_active = row->agent_known && lg_spi_bool(0, TC_AGENT_ACTIVE);
	row->agent_model = lg_spi_text(0, TC_AGENT_MODEL, cxt);

	tenant->tenant = MemoryContextStrdup(cxt, tenant_id);
	tenant->currency = lg_spi_text(0, TC_CURRENCY, cxt);
	tenant->timezone = lg_spi_text(0, TC_TIMEZONE, cxt);
	old = MemoryContextSwitchTo(cxt); /* the rate outlives SPI */
	lg_rate_for(tenant->currency,
				lg_spi_text(0, TC_RATE, cxt),
				lg_spi_text(0, TC_RATE_SOURCE, cxt),
				lg_spi_bool(0, TC_RATE_FAILED),
				&tenant->exchange_rate,
				&tenant->rate_source);
	MemoryContextSwitchTo(old);
	tenant->suspended_until = timestamp_col(TC_SUSPENDED_UNTIL);
	tenant->suspended_reason = lg_spi_text(0, TC_SUSPENDED_REASON, cxt);
	scope = lg_spi_text(0, TC_CACHE_SCOPE, cxt);
	tenant->cache_scope = strcmp(scope, "shared") == 0 ? LG_CACHE_SCOPE_SHARED
						  : strcmp(scope, "off") == 0  ? LG_CACHE_SCOPE_OFF
													   : LG_CACHE_SCOPE_TENANT;
	privacy = lg_spi_text(0, TC_PRIVACY, cxt);
	if (!lg_privacy_parse(privacy, strlen(privacy), &tenant->privacy))
		tenant->privacy = LG_PRIVACY_HASH; /* the CHECK allows no other */

	memset(src, 0, sizeof(*src));
	src->tenant = tenant->tenant;
	src->agent = agent ? MemoryContextStrdup(cxt, agent) : NULL;
	src->timezone = tenant->timezone;
	src->plan = lg_spi_text(0, TC_PLAN, cxt);
	quota_config(&src->tenant_quota, TC_RPM);
	quota_config(&src->agent_quota, TC_AGENT_RPM);
	src->day_start = timestamp_col(TC_DAY_START);
	src->day_end = timestamp_col(TC_DAY_END);
	src->has_budgets = lg_spi_bool(0, TC_HAS_BUDGETS);
	src->lifted_at = timestamp_col(TC_LIFTED_AT);
}

/* May the caller act for the tenant? */
static void
check_member(const LgTenantRow *row, Oid caller, bool caller_admin)
{
	if (caller_admin || lg_role_is_member(caller, row->members))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for tenant \"%s\"", row->tenant.tenant),
			 errdetail("Role \"%s\" is not a member of the tenant.",
					   GetUserNameFromId(caller, false)),
			 errhint("An administrator can add it with "
					 "llm_tenant_set('%s', '{\"members\": [...]}').",
					 row->tenant.tenant)));
}

/* May the tenant (and the call's agent) call now?  Which model? */
static void
check_call(LgRequest *req, const LgTenantRow *row)
{
	const LgTenant *tenant = &row->tenant;

	if (!row->active)
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_INACTIVE),
				 errmsg("tenant \"%s\" is not active", req->tenant),
				 errhint("An administrator can reactivate it with "
						 "llm_tenant_set('%s', '{\"active\": true}').",
						 req->tenant)));
	if (tenant->suspended_until > GetCurrentTimestamp())
		lg_raise_suspended(req->tenant,
						   tenant->suspended_until,
						   tenant->suspended_reason ? tenant->suspended_reason
													: "it was suspended");
	if (row->agent_known && !row->agent_active)
		ereport(ERROR,
				(errcode(ERRCODE_LG_AGENT_INACTIVE),
				 errmsg("agent \"%s\" of tenant \"%s\" is not active",
						req->opt.agent,
						req->tenant),
				 errhint("An administrator can reactivate it with "
						 "llm_agent_set('%s', '%s', '{\"active\": true}').",
						 req->tenant,
						 req->opt.agent)));
	if (req->model == NULL)
		req->model = row->agent_model ? row->agent_model : row->default_model;
	if (req->model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_FOUND),
				 errmsg("no model given and tenant \"%s\" has no default "
						"model",
						req->tenant),
				 errhint("Pass a model, or set one with "
						 "llm_tenant_set('%s', '{\"default_model\": "
						 "\"...\"}').",
						 req->tenant)));
	if (!lg_model_allowed(row->allowed, req->model))
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_ALLOWED),
				 errmsg("model \"%s\" is not allowed for tenant \"%s\"",
						req->model,
						req->tenant),
				 errhint("The tenant's allowed_models setting (or its "
						 "plan's) lists the models it may use.")));
}

static void
catalog_enter(LgOwnerScope *scope)
{
	lg_owner_scope_enter(scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
catalog_exit(LgOwnerScope *scope)
{
	SPI_finish();
	lg_owner_scope_exit(scope);
}

/*
 * Resolve a call from the tables, checking as it goes; the result lives in
 * a memory context of its own, which the catalog cache keeps if it may.
 */
static LgResolution *
resolve_anew(LgRequest *req, Oid caller, bool caller_admin)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "llm_gateway resolution",
											  ALLOCSET_SMALL_SIZES);
	uint64        generation = lg_catalog_generation(); /* before reading */
	LgResolution *res = MemoryContextAllocZero(cxt, sizeof(LgResolution));
	char         *requested = req->model;
	LgOwnerScope  scope;

	catalog_enter(&scope);
	read_tenant_row(req->tenant, req->opt.agent, &res->row, cxt);
	check_member(&res->row, caller, caller_admin);
	check_call(req, &res->row);
	res->model = MemoryContextStrdup(cxt, req->model);
	req->model = res->model;
	lg_plan_load(&res->plan, req, res->row.allowed, cxt);
	lg_limits_load(&res->limits, &res->row.src, cxt);
	catalog_exit(&scope);
	lg_catalog_cache_put(req->tenant,
						 req->opt.agent,
						 requested,
						 generation,
						 res,
						 cxt);
	return res;
}

/* Counters of the period in place for every limit (rebuilt if missing). */
static void
limits_ready(const LgLimits *limits)
{
	LgOwnerScope scope;

	if (lg_limits_ready(limits))
		return;
	catalog_enter(&scope);
	lg_limits_make_ready(limits);
	catalog_exit(&scope);
}

/* The call's own copies of what the resolution says (it may change them). */
static void
copy_out(const LgResolution *res,
		 LgTenant           *tenant,
		 LgPlan             *plan,
		 LgLimits           *limits)
{
	*tenant = res->row.tenant;
	*plan = res->plan;
	plan->cands = palloc(sizeof(LgDeployment) * Max(plan->ncands, 1));
	memcpy(plan->cands, res->plan.cands, sizeof(LgDeployment) * plan->ncands);
	*limits = res->limits;
	limits->budgets = palloc(sizeof(LgBudget) * Max(limits->nbudgets, 1));
	memcpy(limits->budgets,
		   res->limits.budgets,
		   sizeof(LgBudget) * limits->nbudgets);
}

/*
 * Resolve the tenant (checking the caller may act for it), the plan of the
 * call (the deployments it may go to) and the limits it is accountable to:
 * from the catalog cache when it has them, else from the tables.  The
 * checks run on every call either way.  Results are allocated in the
 * caller's memory context.
 */
void
lg_catalog_resolve(LgRequest *req,
				   LgTenant  *tenant,
				   LgPlan    *plan,
				   LgLimits  *limits)
{
	Oid           caller = GetUserId();
	bool          caller_admin = lg_caller_is_admin();
	LgResolution *res =
		lg_catalog_cache_get(req->tenant, req->opt.agent, req->model);

	if (res == NULL)
		res = resolve_anew(req, caller, caller_admin);
	else
	{
		check_member(&res->row, caller, caller_admin);
		check_call(req, &res->row);
		limits_ready(&res->limits);
	}
	copy_out(res, tenant, plan, limits);
	tenant->caller = caller;
	tenant->caller_admin = caller_admin;
}

/* The plan for another model (a budget's downgrade model). */
void
lg_catalog_replan(LgPlan *plan, const LgRequest *req, const char *model)
{
	MemoryContext cxt = CurrentMemoryContext;
	LgRequest     other = *req;
	LgOwnerScope  scope;

	other.model = (char *) model;
	memset(plan, 0, sizeof(*plan));
	catalog_enter(&scope);
	lg_plan_load(plan, &other, NIL, cxt);
	catalog_exit(&scope);
}

/* The tenant and all its budgets, for llm_budget_status(). */
void
lg_catalog_tenant_limits(const char *tenant_id,
						 LgTenant   *tenant,
						 LgLimits   *limits)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid           caller = GetUserId(); /* before acting as the owner */
	bool          caller_admin = lg_caller_is_admin();
	LgOwnerScope  scope;
	LgTenantRow   row;

	catalog_enter(&scope);
	read_tenant_row(tenant_id, NULL, &row, cxt);
	check_member(&row, caller, caller_admin);
	row.src.all_agents = true;
	lg_limits_load(limits, &row.src, cxt);
	catalog_exit(&scope);
	*tenant = row.tenant;
	tenant->caller = caller;
	tenant->caller_admin = caller_admin;
}
