/*
 * status.c — llm_providers_status() and llm_health(): what the gateway
 * knows about its providers right now, for operators and dashboards.
 *
 * The configured status (maintenance, disabled) comes from the providers
 * table; when a provider is active there, the runtime state in shared
 * memory (limits.c) decides: circuit_open, degraded, rate_limited or active.
 */
#include "shmem.h"
#include "spi_util.h"

#include <math.h>

#include "storage/procarray.h"
#include "utils/tuplestore.h"

#define NCOLS 16

static const char *const providers_sql =
	"SELECT name, kind, status, coalesce(max_concurrency, 0), coalesce(rpm, "
	"0),"
	"       coalesce(tpm, 0)"
	"  FROM llm_gateway.providers ORDER BY name";

PG_FUNCTION_INFO_V1(llm_providers_status);
PG_FUNCTION_INFO_V1(llm_health);

typedef struct ProviderRow
{
	char              *name;
	char              *kind;
	char              *configured; /* active, maintenance, disabled */
	int32              max_concurrency;
	int32              rpm;
	int32              tpm;
	bool               observed;
	LgProviderSnapshot snap;
} ProviderRow;

static const char *
effective_status(const ProviderRow *p)
{
	if (strcmp(p->configured, "active") != 0)
		return p->configured;
	return p->observed ? lg_runtime_status_name(p->snap.status) : "active";
}

/* Every provider of this database, with its live state. */
static ProviderRow *
load_providers(int *n)
{
	MemoryContext     cxt = CurrentMemoryContext;
	static SPIPlanPtr plan = NULL;
	LgOwnerScope      scope;
	ProviderRow      *rows;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lg_spi_select(lg_spi_prepare_once(&plan, providers_sql, 0, NULL), NULL);
	*n = (int) SPI_processed;
	rows = MemoryContextAllocZero(cxt, sizeof(ProviderRow) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		rows[i].name = lg_spi_text(i, 1, cxt);
		rows[i].kind = lg_spi_text(i, 2, cxt);
		rows[i].configured = lg_spi_text(i, 3, cxt);
		rows[i].max_concurrency = lg_spi_int32(i, 4);
		rows[i].rpm = lg_spi_int32(i, 5);
		rows[i].tpm = lg_spi_int32(i, 6);
	}
	SPI_finish();
	lg_owner_scope_exit(&scope);
	for (int i = 0; i < *n; i++)
		rows[i].observed = lg_provider_snapshot(rows[i].name, &rows[i].snap);
	return rows;
}

static Datum
numeric_datum(double value, int scale)
{
	return DirectFunctionCall1(float8_numeric,
							   Float8GetDatum(round(value * pow(10, scale)) /
											  pow(10, scale)));
}

static void
provider_tuple(const ProviderRow *p, Datum *v, bool *nulls)
{
	const LgProviderSnapshot *s = &p->snap;

	memset(nulls, 0, sizeof(bool) * NCOLS);
	v[0] = CStringGetTextDatum(p->name);
	v[1] = CStringGetTextDatum(p->kind);
	v[2] = CStringGetTextDatum(effective_status(p));
	v[3] = CStringGetTextDatum(lg_breaker_name(s->breaker));
	v[4] = Int32GetDatum(s->in_flight);
	v[5] = Int32GetDatum(p->max_concurrency);
	nulls[5] = p->max_concurrency == 0;
	v[6] = Int32GetDatum(s->requests);
	v[7] = Int32GetDatum(s->errors);
	v[8] =
		numeric_datum(s->requests ? (double) s->errors / s->requests : 0, 4);
	v[9] = numeric_datum(s->avg_latency_ms, 3);
	nulls[9] = s->requests == 0;
	v[10] = Int32GetDatum(p->rpm);
	nulls[10] = p->rpm == 0;
	v[11] = Int32GetDatum(p->tpm);
	nulls[11] = p->tpm == 0;
	v[12] = Int64GetDatum(s->tokens);
	v[13] = Int32GetDatum(s->consecutive_failures);
	v[14] = CStringGetTextDatum(s->last_error);
	nulls[14] = s->last_error[0] == '\0';
	v[15] = TimestampTzGetDatum(s->status_since);
	nulls[15] = !p->observed;
}

/* llm_providers_status() RETURNS TABLE (...) */
Datum
llm_providers_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProviderRow   *rows;
	int            n;

	lg_shmem_require();
	InitMaterializedSRF(fcinfo, 0);
	rows = load_providers(&n);
	for (int i = 0; i < n; i++)
	{
		Datum v[NCOLS];
		bool  nulls[NCOLS];

		provider_tuple(&rows[i], v, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

static bool
worker_running(void)
{
	int pid = lg_shared->worker_pid;

	return pid != 0 && BackendPidGetProc(pid) != NULL;
}

/*
 * llm_health() RETURNS jsonb
 *
 * healthy: every provider in service is active, and the worker runs;
 * degraded: something is not, but at least one provider is active;
 * unhealthy: no provider is active.
 */
Datum
llm_health(PG_FUNCTION_ARGS)
{
	static const char *const statuses[] = {"active",
										   "degraded",
										   "rate_limited",
										   "circuit_open",
										   "maintenance",
										   "disabled"};
	int                      counts[lengthof(statuses)] = {0};
	ProviderRow             *rows;
	int                      n;
	int                      free_slots;
	const char              *health;
	StringInfoData           b;

	lg_shmem_require();
	rows = load_providers(&n);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < (int) lengthof(statuses); k++)
			if (strcmp(effective_status(&rows[i]), statuses[k]) == 0)
				counts[k]++;
	health = counts[0] == 0 ? "unhealthy"
			 : (counts[0] + counts[4] + counts[5] == n && worker_running())
				 ? "healthy"
				 : "degraded";
	LWLockAcquire(lg_shared->lock, LW_SHARED);
	free_slots = lg_shared->nfree;
	LWLockRelease(lg_shared->lock);

	initStringInfo(&b);
	appendStringInfo(&b,
					 "{\"status\": \"%s\", \"version\": \"%s\", "
					 "\"providers\": {",
					 health,
					 EXTVERSION);
	for (int k = 0; k < (int) lengthof(statuses); k++)
		appendStringInfo(&b,
						 "%s\"%s\": %d",
						 k ? ", " : "",
						 statuses[k],
						 counts[k]);
	appendStringInfo(&b,
					 "}, \"worker\": {\"running\": %s}, "
					 "\"spend_queue\": {\"size\": %d, \"free\": %d}}",
					 worker_running() ? "true" : "false",
					 lg_shared->nslots,
					 free_slots);
	PG_RETURN_JSONB_P(lg_jfinish(&b));
}
