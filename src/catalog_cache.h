/*
 * catalog_cache.h — what the catalog says about a call (catalog.c builds
 * it), and a backend's cache of it (catalog_cache.c).
 */
#ifndef LG_CATALOG_CACHE_H
#define LG_CATALOG_CACHE_H

#include "account.h"

/* The tenant's row as the call sees it: its own, its plan's and its agent's. */
typedef struct LgTenantRow
{
	bool           active;
	char          *default_model;
	List          *allowed; /* allowed model patterns; NIL: every model */
	List          *members; /* role names, or "public" */
	bool           agent_known;
	bool           agent_active;
	char          *agent_model; /* the agent's preferred model */
	LgTenant       tenant;      /* without the caller */
	LgLimitsSource src;
} LgTenantRow;

/* The whole resolution of (tenant, agent, requested model). */
typedef struct LgResolution
{
	LgTenantRow row;
	char       *model; /* the model the call resolved to */
	LgPlan      plan;
	LgLimits    limits;
} LgResolution;

extern int lg_catalog_cache_ttl_ms;

extern bool   lg_catalog_cache_readable(void);
extern bool   lg_catalog_cache_fillable(void);
extern uint64 lg_catalog_generation(void);
extern LgResolution *
lg_catalog_cache_get(const char *tenant, const char *agent, const char *model);
extern void lg_catalog_cache_put(const char   *tenant,
								 const char   *agent,
								 const char   *model,
								 uint64        generation,
								 LgResolution *res,
								 MemoryContext cxt);

#endif /* LG_CATALOG_CACHE_H */
