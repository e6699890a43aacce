/*
 * isolation.c — who may act for which tenant.
 *
 * A role acts for a tenant when it is an administrator (superuser or a
 * member of llm_gateway_admin), or when it has the privileges of a role in
 * the tenant's member list (tenant_members; "public" lets every role in).
 * llm_complete() and llm_budget_status() check it for the tenant they are
 * given; row-level security asks llm_gateway.member_tenants() which rows a
 * role may read.  The member lists themselves are readable by the
 * extension's owner only, so the lookups run in its scope (catalog.c); the
 * caller's identity is taken before switching.
 */
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(llm_gateway_member_tenants);
PG_FUNCTION_INFO_V1(llm_gateway_require_tenant);

static const char *const members_sql =
	"SELECT m.tenant, m.member::text FROM llm_gateway.tenant_members m"
	" ORDER BY m.tenant";
static SPIPlanPtr members_plan = NULL;

static const char *const tenant_members_sql =
	"SELECT ARRAY(SELECT m.member::text FROM llm_gateway.tenant_members m"
	"              WHERE m.tenant = t.tenant)"
	"  FROM llm_gateway.tenants t WHERE t.tenant = $1";
static SPIPlanPtr tenant_members_plan = NULL;

bool
lg_caller_is_admin(void)
{
	Oid caller = GetUserId();
	Oid admin = get_role_oid(LG_ADMIN_ROLE, true);

	return superuser_arg(caller) ||
		   (OidIsValid(admin) && has_privs_of_role(caller, admin));
}

static bool
role_is_member(Oid role, const char *member)
{
	Oid oid;

	if (strcmp(member, "public") == 0)
		return true;
	oid = get_role_oid(member, true);
	return OidIsValid(oid) && has_privs_of_role(role, oid);
}

/* Does role have the privileges of one of the members (char * list)? */
bool
lg_role_is_member(Oid role, List *members)
{
	ListCell *lc;

	foreach (lc, members)
		if (role_is_member(role, (const char *) lfirst(lc)))
			return true;
	return false;
}

/*
 * llm_gateway.member_tenants() RETURNS text[]
 *
 * The tenants the current role is a member of.  Administrators read every
 * row through their own policy, so they need no list here.
 */
Datum
llm_gateway_member_tenants(PG_FUNCTION_ARGS)
{
	Oid           caller = GetUserId();
	MemoryContext cxt = CurrentMemoryContext;
	LgOwnerScope  scope;
	List         *tenants = NIL;
	char         *last = NULL;
	Datum        *elems;
	ListCell     *lc;
	int           n = 0;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lg_spi_select(lg_spi_prepare_once(&members_plan, members_sql, 0, NULL),
				  NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char *tenant = lg_spi_text((int) i, 1, cxt);
		char *member = lg_spi_text((int) i, 2, cxt);

		if (last != NULL && strcmp(last, tenant) == 0)
			continue; /* already in */
		if (role_is_member(caller, member))
		{
			tenants = lappend(tenants, tenant);
			last = tenant;
		}
	}
	SPI_finish();
	lg_owner_scope_exit(&scope);

	elems = palloc(sizeof(Datum) * (list_length(tenants) + 1));
	foreach (lc, tenants)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(
		construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * llm_gateway.require_tenant(tenant text) RETURNS void
 *
 * Refuses a tenant that does not exist (LG001) or that the current role may
 * not act for (42501); the analytics functions, which run with the
 * caller's rights, start with it.
 */
Datum
llm_gateway_require_tenant(PG_FUNCTION_ARGS)
{
	Oid           caller = GetUserId();
	bool          admin = lg_caller_is_admin();
	MemoryContext cxt = CurrentMemoryContext;
	char         *tenant;
	Oid           types[1] = {TEXTOID};
	Datum         args[1];
	LgOwnerScope  scope;
	bool          found;
	List         *members = NIL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_NOT_FOUND),
				 errmsg("tenant must not be NULL")));
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	args[0] = CStringGetTextDatum(tenant);
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lg_spi_select(lg_spi_prepare_once(&tenant_members_plan,
									  tenant_members_sql,
									  1,
									  types),
				  args);
	found = SPI_processed == 1;
	if (found)
		members = lg_spi_text_list(0, 1, cxt);
	SPI_finish();
	lg_owner_scope_exit(&scope);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_LG_TENANT_NOT_FOUND),
				 errmsg("tenant \"%s\" does not exist", tenant)));
	if (!admin && !lg_role_is_member(caller, members))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", tenant),
				 errdetail("Role \"%s\" is not a member of the tenant.",
						   GetUserNameFromId(caller, false))));
	PG_RETURN_VOID();
}
