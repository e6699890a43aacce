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
#include "account.h"
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
	TC_HAS_BUDGETS
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
	"                WHERE b.tenant = t.tenant OR b.plan = t.plan)"
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

/*
 * The tenant's row, once the caller is known to act for it: fills tenant
 * and the source of its limits.  The row stays in SPI_tuptable.
 */
static void
fetch_tenant(const char     *tenant_id,
			 const char     *agent,
			 LgTenant       *tenant,
			 LgLimitsSource *src,
			 MemoryContext   cxt)
{
	Oid           caller = tenant->caller;
	Oid           argtypes[2] = {TEXTOID, TEXTOID};
	Datum         args[2];
	char         *scope;
	MemoryContext old;

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
	if (!tenant->caller_admin &&
		!lg_role_is_member(caller, lg_spi_text_list(0, TC_MEMBERS, cxt)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", tenant_id),
				 errdetail("Role \"%s\" is not a member of the tenant.",
						   GetUserNameFromId(caller, false)),
				 errhint("An administrator can add it with "
						 "llm_tenant_set('%s', '{\"members\": [...]}').",
						 tenant_id)));
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

	memset(src, 0, sizeof(*src));
	src->tenant = tenant->tenant;
	src->agent = agent;
	src->timezone = tenant->timezone;
	src->plan = lg_spi_text(0, TC_PLAN, cxt);
	quota_config(&src->tenant_quota, TC_RPM);
	quota_config(&src->agent_quota, TC_AGENT_RPM);
	src->day_start = timestamp_col(TC_DAY_START);
	src->day_end = timestamp_col(TC_DAY_END);
	src->has_budgets = lg_spi_bool(0, TC_HAS_BUDGETS);
	src->lifted_at = timestamp_col(TC_LIFTED_AT);
}

/* May the tenant (and the call's agent) call now?  Which model? */
static List *
check_call(LgRequest *req, const LgTenant *tenant, MemoryContext cxt)
{
	List *allowed = lg_spi_text_list(0, TC_ALLOWED_MODELS, cxt);
	char *default_model = lg_spi_text(0, TC_DEFAULT_MODEL, cxt);
	char *preferred = lg_spi_text(0, TC_AGENT_MODEL, cxt);

	if (!lg_spi_bool(0, TC_ACTIVE))
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
	if (lg_spi_bool(0, TC_AGENT_KNOWN) && !lg_spi_bool(0, TC_AGENT_ACTIVE))
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
		req->model = preferred ? preferred : default_model;
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
	if (!lg_model_allowed(allowed, req->model))
		ereport(ERROR,
				(errcode(ERRCODE_LG_MODEL_NOT_ALLOWED),
				 errmsg("model \"%s\" is not allowed for tenant \"%s\"",
						req->model,
						req->tenant),
				 errhint("The tenant's allowed_models setting (or its "
						 "plan's) lists the models it may use.")));
	return allowed;
}

static void
catalog_enter(LgOwnerScope *scope, LgTenant *tenant)
{
	tenant->caller = GetUserId();
	tenant->caller_admin = lg_caller_is_admin();
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
 * Resolve the tenant (checking the caller may act for it), the plan of the
 * call (the deployments it may go to) and the limits it is accountable to.
 * Results are allocated in the caller's memory context.
 */
void
lg_catalog_resolve(LgRequest *req,
				   LgTenant  *tenant,
				   LgPlan    *plan,
				   LgLimits  *limits)
{
	MemoryContext  cxt = CurrentMemoryContext;
	LgOwnerScope   scope;
	LgLimitsSource src;
	List          *allowed;

	catalog_enter(&scope, tenant);
	fetch_tenant(req->tenant, req->opt.agent, tenant, &src, cxt);
	allowed = check_call(req, tenant, cxt);
	lg_plan_load(plan, req, allowed, cxt);
	lg_limits_load(limits, &src, cxt);
	catalog_exit(&scope);
}

/* The plan for another model (a budget's downgrade model). */
void
lg_catalog_replan(LgPlan *plan, const LgRequest *req, const char *model)
{
	MemoryContext cxt = CurrentMemoryContext;
	LgRequest     other = *req;
	LgOwnerScope  scope;
	LgTenant      dummy;

	other.model = (char *) model;
	memset(plan, 0, sizeof(*plan));
	catalog_enter(&scope, &dummy);
	lg_plan_load(plan, &other, NIL, cxt);
	catalog_exit(&scope);
}

/* The tenant and all its budgets, for llm_budget_status(). */
void
lg_catalog_tenant_limits(const char *tenant_id,
						 LgTenant   *tenant,
						 LgLimits   *limits)
{
	MemoryContext  cxt = CurrentMemoryContext;
	LgOwnerScope   scope;
	LgLimitsSource src;

	catalog_enter(&scope, tenant);
	fetch_tenant(tenant_id, NULL, tenant, &src, cxt);
	src.all_agents = true;
	lg_limits_load(limits, &src, cxt);
	catalog_exit(&scope);
}
