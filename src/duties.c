/*
 * duties.c — what a full maintenance pass does besides writing spend.
 *
 *   rollup      fold the ledger rows written since the last pass into
 *               usage_hourly and usage_daily (llm_gateway.rollup), and the
 *               rows that were still in the spend queue then (holes); each
 *               row is counted once, none is read twice
 *   partitions  keep the ledger's monthly partitions ahead of time and drop
 *               those past llm_gateway.ledger_retention_months
 *               (llm_gateway.maintain_partitions), and the stored texts
 *               past llm_gateway.content_retention_days or the ledger's
 *               retention (llm_gateway.purge_content); last in the pass
 *   periods     close every budget period that ended, once, catching up
 *               over any number of missed boundaries, and clear expired
 *               suspensions (llm_gateway.close_periods)
 *   sweep       fire the thresholds a budget reached without a call (its
 *               amount was lowered, say)
 *   reconcile   set a quiet budget counter to what the ledger says
 *
 * The SQL duties run as the extension's owner; each is idempotent.  Sweep
 * and reconcile read every budget, so the worker runs them at most once per
 * llm_gateway.sweep_interval; llm_maintenance() runs them always.
 */
#include "account.h"
#include "shmem.h"
#include "spi_util.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/resowner.h"
#include "utils/array.h"
#include "utils/builtins.h"

#define ROLLUP_BATCH 100000
/* An id being drawn takes microseconds: look again a few times. */
#define DRAW_TRIES   20
#define DRAW_WAIT_US 1000

static const char *const sequence_sql =
	"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
	"  FROM llm_gateway.usage_id_seq";
static const char *const rollup_sql =
	"SELECT llm_gateway.rollup($1, $2, $3, $4)";
static const char *const partitions_sql =
	"SELECT llm_gateway.maintain_partitions($1, $2)::text";
static const char *const content_sql =
	"SELECT llm_gateway.purge_content($1, $2, $3)";
static const char *const periods_sql =
	"SELECT llm_gateway.close_periods($1, $2)";
static const char *const budgeted_sql =
	"SELECT t.tenant, t.timezone, t.plan FROM llm_gateway.tenants t"
	" WHERE EXISTS (SELECT 1 FROM llm_gateway.budgets b"
	"                WHERE b.enabled AND (b.tenant = t.tenant OR b.plan = "
	"t.plan))"
	" ORDER BY 1";

static SPIPlanPtr sequence_plan = NULL;
static SPIPlanPtr rollup_plan = NULL;
static SPIPlanPtr partitions_plan = NULL;
static SPIPlanPtr content_plan = NULL;
static SPIPlanPtr periods_plan = NULL;
static SPIPlanPtr budgeted_plan = NULL;

/* Run a one-row, one-column SELECT that changes things. */
static Datum
run_scalar(SPIPlanPtr plan, Datum *args, bool *isnull)
{
	if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "a maintenance duty failed to run");
	return lg_spi_col(0, 1, isnull);
}

/*
 * What the rollup may read: the sequence's value (*upto) and, as an int8[],
 * the ids up to it that are still in the spend queue (their rows are not
 * written or not committed yet: the rollup keeps them as holes and reads
 * them at a later pass).  The sequence is read first (lg_spend_pending_ids
 * says why).  False when an id is being drawn at every try: skip the pass.
 */
static bool
rollup_bounds(int64 *upto, Datum *pending)
{
	for (int try = 0; try < DRAW_TRIES; try++)
	{
		int64 *ids;
		int    n;
		Datum *elems;

		lg_spi_select(lg_spi_prepare_once(&sequence_plan,
										  sequence_sql,
										  0,
										  NULL),
					  NULL);
		*upto = lg_spi_int64(0, 1);
		if (!lg_spend_pending_ids(&ids, &n))
		{
			pfree(ids);
			pg_usleep(DRAW_WAIT_US);
			continue;
		}
		elems = palloc(sizeof(Datum) * Max(n, 1));
		for (int i = 0; i < n; i++)
			elems[i] = Int64GetDatum(ids[i]);
		*pending = PointerGetDatum(construct_array(elems,
												   n,
												   INT8OID,
												   sizeof(int64),
												   FLOAT8PASSBYVAL,
												   TYPALIGN_DOUBLE));
		pfree(elems);
		pfree(ids);
		return true;
	}
	return false;
}

static void
duty_rollup(LgMaintenance *m)
{
	Oid   types[4] = {INT8OID, INT8ARRAYOID, INT4OID, BOOLOID};
	Datum args[4];
	int64 upto;
	bool  isnull;

	if (!rollup_bounds(&upto, &args[1]))
		return;
	args[0] = Int64GetDatum(upto);
	args[2] = Int32GetDatum(ROLLUP_BATCH);
	args[3] = BoolGetDatum(m->forced); /* the worker waits for no one */
	m->rolled_up = DatumGetInt64(
		run_scalar(lg_spi_prepare_once(&rollup_plan, rollup_sql, 4, types),
				   args,
				   &isnull));
	if (m->rolled_up >= ROLLUP_BATCH)
		m->more = true;
}

static void
duty_partitions(LgMaintenance *m, MemoryContext cxt)
{
	Oid   types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum args[2];
	bool  isnull;
	Datum d;

	args[0] = TimestampTzGetDatum(m->at);
	args[1] = Int32GetDatum(lg_ledger_retention_months);
	d = run_scalar(lg_spi_prepare_once(&partitions_plan,
									   partitions_sql,
									   2,
									   types),
				   args,
				   &isnull);
	m->partitions =
		isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));
}

static void
duty_content(LgMaintenance *m)
{
	Oid   types[3] = {TIMESTAMPTZOID, INT4OID, INT4OID};
	Datum args[3];
	bool  isnull;

	if (lg_content_retention_days == 0 && lg_ledger_retention_months == 0)
		return;
	args[0] = TimestampTzGetDatum(m->at);
	args[1] = Int32GetDatum(lg_content_retention_days);
	args[2] = Int32GetDatum(lg_ledger_retention_months);
	(void)
		run_scalar(lg_spi_prepare_once(&content_plan, content_sql, 3, types),
				   args,
				   &isnull);
}

static void
run_partitions(LgMaintenance *m)
{
	MemoryContext cxt = CurrentMemoryContext;
	LgOwnerScope  scope;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	duty_partitions(m, cxt);
	duty_content(m);
	SPI_finish();
	lg_owner_scope_exit(&scope);
}

static void
duty_periods(LgMaintenance *m)
{
	Oid   types[2] = {TIMESTAMPTZOID, BOOLOID};
	Datum args[2] = {TimestampTzGetDatum(m->at), BoolGetDatum(m->forced)};
	bool  isnull;

	m->periods_closed = DatumGetInt32(
		run_scalar(lg_spi_prepare_once(&periods_plan, periods_sql, 2, types),
				   args,
				   &isnull));
}

/* Sweep and reconcile the budgets of every tenant that has any. */
static void
duty_budgets(LgMaintenance *m)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "llm_gateway sweep",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int           ntenants;
	char        **tenants;
	char        **zones;
	char        **plans;

	lg_spi_select(lg_spi_prepare_once(&budgeted_plan, budgeted_sql, 0, NULL),
				  NULL);
	ntenants = (int) SPI_processed;
	tenants = palloc(sizeof(char *) * (ntenants + 1));
	zones = palloc(sizeof(char *) * (ntenants + 1));
	plans = palloc(sizeof(char *) * (ntenants + 1));
	for (int i = 0; i < ntenants; i++)
	{
		tenants[i] = lg_spi_text(i, 1, cxt);
		zones[i] = lg_spi_text(i, 2, cxt);
		plans[i] = lg_spi_text(i, 3, cxt);
	}
	for (int i = 0; i < ntenants; i++)
	{
		LgLimitsSource src;
		LgLimits       lim;

		memset(&src, 0, sizeof(src));
		src.tenant = tenants[i];
		src.timezone = zones[i];
		src.plan = plans[i];
		src.all_agents = true;
		src.has_budgets = true;
		lg_limits_load(&lim, &src, cxt);
		m->alerts_swept += lg_account_sweep(&lim);
		m->reconciled += lg_budgets_reconcile(&lim);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* Sweep and reconcile when due (always when forced). */
static bool
budgets_due(const LgMaintenance *m)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!m->forced && lg_shared->swept_at != 0 &&
		now - lg_shared->swept_at <
			(int64) lg_sweep_interval_s * USECS_PER_SEC)
		return false;
	lg_shared->swept_at = now; /* unlocked: two passes racing both sweep */
	return true;
}

static void
run_all(LgMaintenance *m)
{
	LgOwnerScope scope;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	duty_rollup(m);
	duty_periods(m);
	if (budgets_due(m))
		duty_budgets(m);
	SPI_finish();
	lg_owner_scope_exit(&scope);
}

/*
 * Run duties in the current transaction.  For the worker they run in a
 * subtransaction: one that fails is logged and rolled back, and the spend
 * written by the same pass still commits.  llm_maintenance() lets the error
 * reach its caller.
 */
static void
guarded(LgMaintenance *m, void (*duties)(LgMaintenance *))
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	if (m->forced)
	{
		duties(m);
		return;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		duties(m);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(LOG,
				(errmsg("llm_gateway maintenance duties failed: %s",
						error->message),
				 errhint("They run again at the next pass; spend is written "
						 "regardless.")));
		FreeErrorData(error);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

void
lg_duties_run(LgMaintenance *m)
{
	guarded(m, run_all);
}

/*
 * Partitions, last in a pass: creating or dropping one locks the ledger
 * (NOWAIT) until the pass's transaction ends, which should come at once.
 */
void
lg_duty_partitions(LgMaintenance *m)
{
	guarded(m, run_partitions);
}
