/*
 * events.c — write what backends queued: provider status changes (to
 * provider_events, with the alerts they raise) and alerts.
 *
 * limits.c queues an event in shared memory whenever a provider's runtime
 * status changes, alerts.c when a budget threshold is crossed or a rate
 * limit refuses a call (the change happens in whatever backend observed
 * it, whose transaction may well roll back).  The worker's pass, or
 * llm_maintenance(), claims the events of its database, writes them in the
 * order they happened, and frees them when its transaction commits; if it
 * aborts they go back to pending.
 */
#include "account.h"
#include "shmem.h"
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

/* llm_maintenance() waits for other writers: poll every WAIT_MS, at most
 * WAIT_LIMIT_MS. */
#define WAIT_MS       10
#define WAIT_LIMIT_MS 10000

typedef struct EventRef
{
	int    index;
	uint64 generation;
} EventRef;

static EventRef *claimed = NULL;
static int       nclaimed = 0;
static bool      callback_registered = false;

static const char *const insert_sql =
	"INSERT INTO llm_gateway.provider_events (at, provider, from_status, "
	"to_status, reason)"
	" VALUES ($1, $2, $3, $4, $5)";
static SPIPlanPtr insert_plan = NULL;

static void
settle_claims(bool committed)
{
	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	for (int i = 0; i < nclaimed; i++)
	{
		LgEvent *e = &lg_shared->events[claimed[i].index];

		if (e->generation != claimed[i].generation ||
			e->state != LG_EVENT_CLAIMED || e->claimer_pid != MyProcPid)
			continue;
		e->state = committed ? LG_EVENT_FREE : LG_EVENT_PENDING;
	}
	LWLockRelease(lg_shared->route_lock);
	nclaimed = 0;
}

static void
xact_callback(XactEvent event, pg_attribute_unused() void *arg)
{
	if (nclaimed == 0)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		settle_claims(true);
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		settle_claims(false);
}

static void
insert_event(const LgEvent *e)
{
	Oid   types[5] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum values[5];
	int   rc;

	values[0] = TimestampTzGetDatum(e->at);
	values[1] = CStringGetTextDatum(e->provider);
	values[2] = CStringGetTextDatum(e->from_status);
	values[3] = CStringGetTextDatum(e->to_status);
	values[4] = CStringGetTextDatum(e->reason);
	rc = SPI_execute_plan(lg_spi_prepare_once(&insert_plan,
											  insert_sql,
											  5,
											  types),
						  values,
						  NULL,
						  false,
						  0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR,
			 "could not write provider_events: %s",
			 SPI_result_code_string(rc));
}

static int
compare_generation(const void *a, const void *b)
{
	uint64 x = ((const LgEvent *) a)->generation;
	uint64 y = ((const LgEvent *) b)->generation;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Write this database's pending events in the current transaction. */
int
lg_events_flush(void)
{
	LgEvent     *copies = palloc(sizeof(LgEvent) * LG_MAX_EVENTS);
	int          n = 0;
	LgOwnerScope scope;

	if (!callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		claimed = MemoryContextAlloc(TopMemoryContext,
									 sizeof(EventRef) * LG_MAX_EVENTS);
		callback_registered = true;
	}
	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	for (int i = 0; i < LG_MAX_EVENTS && nclaimed < LG_MAX_EVENTS; i++)
	{
		LgEvent *e = &lg_shared->events[i];

		if (e->state != LG_EVENT_PENDING || e->dboid != MyDatabaseId)
			continue;
		e->state = LG_EVENT_CLAIMED;
		e->claimer_pid = MyProcPid;
		claimed[nclaimed].index = i;
		claimed[nclaimed].generation = e->generation;
		nclaimed++;
		copies[n++] = *e;
	}
	LWLockRelease(lg_shared->route_lock);
	if (n == 0)
		return 0;
	/* ring slots are reused out of order: write in the order things happened */
	qsort(copies, n, sizeof(LgEvent), compare_generation);

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (int i = 0; i < n; i++)
	{
		if (copies[i].kind == LG_EVENT_ALERT)
			lg_alert_write(&copies[i]);
		else
		{
			insert_event(&copies[i]);
			lg_alert_write_provider(&copies[i]);
		}
	}
	SPI_finish();
	lg_owner_scope_exit(&scope);
	return n;
}

bool
lg_events_waiting(Oid dboid)
{
	bool found = false;

	LWLockAcquire(lg_shared->route_lock, LW_SHARED);
	for (int i = 0; i < LG_MAX_EVENTS && !found; i++)
		found = lg_shared->events[i].state == LG_EVENT_PENDING &&
				lg_shared->events[i].dboid == dboid;
	LWLockRelease(lg_shared->route_lock);
	return found;
}

/* Add the databases with pending events to dboids[0..n), up to max. */
int
lg_events_other_databases(Oid *dboids, int n, int max)
{
	LWLockAcquire(lg_shared->route_lock, LW_SHARED);
	for (int i = 0; i < LG_MAX_EVENTS && n < max; i++)
	{
		const LgEvent *e = &lg_shared->events[i];
		bool           known = false;

		if (e->state != LG_EVENT_PENDING || e->dboid == MyDatabaseId)
			continue;
		for (int k = 0; k < n && !known; k++)
			known = dboids[k] == e->dboid;
		if (!known)
			dboids[n++] = e->dboid;
	}
	LWLockRelease(lg_shared->route_lock);
	return n;
}

/*
 * Wait (a little) until no other process is writing events of this
 * database, so that llm_maintenance()'s caller sees every alert written.
 */
void
lg_events_wait_for_writers(void)
{
	for (int waited = 0; waited < WAIT_LIMIT_MS; waited += WAIT_MS)
	{
		bool busy = false;

		LWLockAcquire(lg_shared->route_lock, LW_SHARED);
		for (int i = 0; i < LG_MAX_EVENTS && !busy; i++)
		{
			const LgEvent *e = &lg_shared->events[i];

			busy = e->dboid == MyDatabaseId && e->state == LG_EVENT_CLAIMED &&
				   e->claimer_pid != MyProcPid;
		}
		LWLockRelease(lg_shared->route_lock);
		if (!busy)
			return;
		lg_nap(WAIT_MS);
	}
}

/* Drop the pending events of a database without the extension. */
int
lg_events_discard(Oid dboid)
{
	int n = 0;

	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	for (int i = 0; i < LG_MAX_EVENTS; i++)
		if (lg_shared->events[i].state == LG_EVENT_PENDING &&
			lg_shared->events[i].dboid == dboid)
		{
			lg_shared->events[i].state = LG_EVENT_FREE;
			n++;
		}
	LWLockRelease(lg_shared->route_lock);
	return n;
}
