/*
 * worker.c — the llm_gateway background worker and its on-demand flushers.
 *
 * The worker connects to llm_gateway.database and loops: it sleeps on its
 * latch until llm_gateway.worker_interval passes or a backend wakes it
 * (spend to write), then runs one maintenance pass in one transaction.  A
 * pass that fails is logged and rolled back, and the next one runs after a
 * short back-off; a worker that exits (pg_terminate_backend, a FATAL error)
 * is restarted by the postmaster after RESTART_S seconds, and finds in
 * shared memory whatever was still waiting.
 *
 * SIGTERM (server shutdown, pg_terminate_backend) does not stop it at once:
 * the backends being shut down at the same moment abort their transactions
 * and hand their rows over, so the worker keeps writing until nothing of its
 * database waits any more (or DRAIN_LIMIT_MS passes), then exits.
 *
 * Where the extension is not installed the worker does nothing, and it
 * never waits for a lock: if DROP EXTENSION holds the extension, or
 * anything holds the ledger, the pass is skipped.  A pass that has begun
 * holds a share lock on the extension, so a DROP EXTENSION waits at most
 * for the end of that pass (pin_extension).
 *
 * Spend waiting for another database is written by a short-lived flusher
 * worker started for that database (at most LG_MAX_FLUSHERS at a time).
 */
#include "account.h"
#include "shmem.h"

#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define RESTART_S        5
#define ERROR_BACKOFF_MS 1000
#define DRAIN_LIMIT_MS   10000
#define DRAIN_POLL_MS    10

static volatile sig_atomic_t got_sigterm = false;

PGDLLEXPORT void lg_worker_main(Datum arg);
PGDLLEXPORT void lg_flusher_main(Datum arg);

static void
fill_worker(BackgroundWorker *w, const char *function, const char *type)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags =
		BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	strlcpy(w->bgw_library_name, "llm_gateway", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w->bgw_name, type, BGW_MAXLEN);
	strlcpy(w->bgw_type, type, BGW_MAXLEN);
}

void
lg_worker_register(void)
{
	BackgroundWorker w;

	fill_worker(&w, "lg_worker_main", "llm_gateway worker");
	w.bgw_restart_time = RESTART_S;
	RegisterBackgroundWorker(&w);
}

/* The extension in the worker's database, for one transaction. */
typedef enum ExtensionState
{
	EXTENSION_ABSENT, /* not installed */
	EXTENSION_BUSY,   /* being dropped or altered: skip this time */
	EXTENSION_PINNED  /* installed, and stays so until the transaction ends */
} ExtensionState;

/*
 * A share lock on the extension keeps DROP EXTENSION from removing tables
 * under a pass that has begun (it waits for the end of that transaction
 * instead); a DROP already under way holds the lock, and the pass is
 * skipped rather than wait for it.  Without the lock a pass that looked
 * the extension up just before a DROP committed failed on its tables.
 */
static ExtensionState
pin_extension(void)
{
	Oid ext = get_extension_oid("llm_gateway", true);

	if (!OidIsValid(ext))
		return EXTENSION_ABSENT;
	if (!ConditionalLockDatabaseObject(ExtensionRelationId,
									   ext,
									   0,
									   AccessShareLock))
		return EXTENSION_BUSY;
	/* dropped between the look-up and the lock? */
	AcceptInvalidationMessages();
	return get_extension_oid("llm_gateway", true) == ext ? EXTENSION_PINNED
														 : EXTENSION_ABSENT;
}

/* Lock the ledger for writing, or say it is busy (DROP EXTENSION, say). */
static bool
ledger_lockable(void)
{
	Oid nsp = get_namespace_oid(LG_SCHEMA, true);
	Oid usage = OidIsValid(nsp) ? get_relname_relid("usage", nsp) : InvalidOid;

	return OidIsValid(usage) &&
		   ConditionalLockRelationOid(usage, RowExclusiveLock);
}

/* ---- flushers for other databases ---- */

static void
release_flusher(pg_attribute_unused() int code, Datum arg)
{
	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	lg_shared->flusher_db[DatumGetInt32(arg)] = InvalidOid;
	LWLockRelease(lg_shared->lock);
}

/* A flusher slot for dboid, or -1 if one runs already or none is free. */
static int
reserve_flusher(Oid dboid)
{
	int free_slot = -1;

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int k = 0; k < LG_MAX_FLUSHERS; k++)
	{
		if (lg_shared->flusher_db[k] == dboid)
		{
			LWLockRelease(lg_shared->lock);
			return -1;
		}
		if (free_slot < 0 && !OidIsValid(lg_shared->flusher_db[k]))
			free_slot = k;
	}
	if (free_slot >= 0)
		lg_shared->flusher_db[free_slot] = dboid;
	LWLockRelease(lg_shared->lock);
	return free_slot;
}

static void
start_flushers(void)
{
	Oid dbs[LG_MAX_FLUSHERS];
	int n =
		lg_events_other_databases(dbs,
								  lg_spend_other_databases(dbs,
														   LG_MAX_FLUSHERS),
								  LG_MAX_FLUSHERS);

	for (int i = 0; i < n; i++)
	{
		BackgroundWorker w;
		int              k;

		if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[i])))
		{
			ereport(LOG,
					(errmsg("llm_gateway discarded %d ledger rows of a "
							"dropped database",
							lg_spend_discard(dbs[i]))));
			(void) lg_events_discard(dbs[i]);
			continue;
		}
		if ((k = reserve_flusher(dbs[i])) < 0)
			continue;
		fill_worker(&w, "lg_flusher_main", "llm_gateway flusher");
		w.bgw_restart_time = BGW_NEVER_RESTART;
		w.bgw_main_arg = Int32GetDatum(k);
		memcpy(w.bgw_extra, &dbs[i], sizeof(Oid));
		if (!RegisterDynamicBackgroundWorker(&w, NULL))
			release_flusher(0, Int32GetDatum(k));
	}
}

/* ---- one pass ---- */

/*
 * One transaction: write spend (every duty when full).  Returns true when
 * the pass stopped at its row limit and should run again at once.
 */
static bool
run_pass(bool full, bool main_worker)
{
	LgMaintenance  m;
	ExtensionState extension;

	memset(&m, 0, sizeof(m));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING,
						   full ? "llm_gateway: maintenance pass"
								: "llm_gateway: writing spend");
	m.at = GetCurrentTimestamp();
	m.full = full;
	extension = pin_extension();
	if (extension == EXTENSION_ABSENT)
	{
		int n = lg_spend_discard(MyDatabaseId);

		(void) lg_events_discard(MyDatabaseId);
		if (n > 0)
			ereport(LOG,
					(errmsg("llm_gateway discarded %d ledger rows: the "
							"extension is not "
							"installed in this database",
							n)));
	}
	else if (extension == EXTENSION_PINNED && ledger_lockable())
	{
		lg_maintenance_run(&m, false);
		if (m.rates < 0)
			ereport(LOG,
					(errmsg("llm_gateway could not refresh the exchange "
							"rates: %s",
							m.rates_error),
					 errhint("Calls use the last known rates meanwhile.")));
	}
	if (main_worker)
		start_flushers();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return m.more;
}

/* ---- webhooks, between passes ---- */

/* Run one step of SPI work in its own short transaction. */
static int
in_transaction(int (*work)(LgWebhookJob *, int, MemoryContext),
			   LgWebhookJob *jobs,
			   int           n,
			   MemoryContext cxt)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (pin_extension() == EXTENSION_PINNED)
		n = work(jobs, n, cxt);
	else
		n = 0;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return n;
}

static int
record_all(LgWebhookJob *jobs, int n, pg_attribute_unused() MemoryContext cxt)
{
	for (int i = 0; i < n; i++)
		lg_webhook_record(&jobs[i]);
	return n;
}

/*
 * Deliver the due webhooks: pick them in one transaction, POST them with
 * none open (a slow receiver holds no lock), record in another.
 */
static bool
deliver_webhooks(pg_attribute_unused() bool full,
				 pg_attribute_unused() bool main_worker)
{
	LgWebhookJob jobs[LG_WEBHOOK_BATCH];
	int          n;

	pgstat_report_activity(STATE_RUNNING, "llm_gateway: delivering webhooks");
	n = in_transaction(lg_webhook_pick,
					   jobs,
					   LG_WEBHOOK_BATCH,
					   CurrentMemoryContext);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		lg_webhook_post(&jobs[i]);
	}
	if (n > 0)
		(void) in_transaction(record_all, jobs, n, CurrentMemoryContext);
	pgstat_report_activity(STATE_IDLE, NULL);
	return n == LG_WEBHOOK_BATCH;
}

/* A step, with a failure logged and rolled back instead of ending us. */
static bool
guarded(bool (*step)(bool, bool), bool full, bool main_worker, bool *failed)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool more = false;

	*failed = false;
	PG_TRY();
	{
		more = step(full, main_worker);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		*failed = true;
	}
	PG_END_TRY();
	return more;
}

/* ---- the main worker ---- */

static void
worker_sigterm(SIGNAL_ARGS)
{
	int save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Write what waits until nothing does (or the limit passes), then exit. */
static void
drain_and_exit(void)
{
	bool failed;

	for (int waited = 0; waited < DRAIN_LIMIT_MS; waited += DRAIN_POLL_MS)
	{
		(void) guarded(run_pass, false, false, &failed);
		if (lg_spend_waiting() == 0)
			break;
		(void) WaitLatch(MyLatch,
						 WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 DRAIN_POLL_MS,
						 PG_WAIT_EXTENSION);
	}
	proc_exit(1); /* 1: a terminated worker is restarted */
}

static void
unregister_worker(pg_attribute_unused() int   code,
				  pg_attribute_unused() Datum arg)
{
	lg_shared->worker_latch = NULL;
	lg_shared->worker_pid = 0;
}

static long
ms_until(TimestampTz t)
{
	long ms = (long) ((t - GetCurrentTimestamp()) / 1000);

	return ms < 0 ? 0 : ms;
}

void
lg_worker_main(pg_attribute_unused() Datum arg)
{
	MemoryContext loop_cxt;
	TimestampTz   next_full = 0;
	bool          run_now = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(lg_database, NULL, 0);
	/* the rollup reads the spend queue, then the ledger in a new snapshot */
	SetConfigOption("default_transaction_isolation",
					"read committed",
					PGC_SUSET,
					PGC_S_OVERRIDE);

	lg_shmem_require();
	lg_shared->worker_pid = MyProcPid;
	lg_shared->worker_latch = MyLatch;
	on_shmem_exit(unregister_worker, (Datum) 0);
	loop_cxt = AllocSetContextCreate(TopMemoryContext,
									 "llm_gateway worker",
									 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("llm_gateway worker started in database \"%s\"",
					lg_database)));

	for (;;)
	{
		bool full;
		bool failed;

		if (!run_now)
		{
			int rc = WaitLatch(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   ms_until(next_full),
							   PG_WAIT_EXTENSION);

			ResetLatch(MyLatch);
			/*
			 * Woken for spend: let the calls of the next moment settle too,
			 * and write them in one transaction (one insert, one flush).
			 */
			if ((rc & WL_LATCH_SET) && lg_spend_write_delay_ms > 0)
				(void) WaitLatch(MyLatch,
								 WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 Min(lg_spend_write_delay_ms,
									 ms_until(next_full)),
								 PG_WAIT_EXTENSION);
		}
		CHECK_FOR_INTERRUPTS();
		if (got_sigterm)
			drain_and_exit();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		pg_atomic_write_u32(&lg_shared->wake_pending, 0);
		full = GetCurrentTimestamp() >= next_full;
		MemoryContextSwitchTo(loop_cxt);
		run_now = guarded(run_pass, full, true, &failed);
		if (full && !failed)
			run_now |= guarded(deliver_webhooks, full, true, &failed);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_cxt);
		if (full)
			next_full = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													lg_worker_interval_ms);
		if (failed)
		{
			run_now = false;
			(void) WaitLatch(MyLatch,
							 WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 ERROR_BACKOFF_MS,
							 PG_WAIT_EXTENSION);
		}
	}
}

/* ---- a flusher: one database, until nothing is left, then exit ---- */

void
lg_flusher_main(Datum arg)
{
	Oid  dboid;
	bool failed = false;

	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	before_shmem_exit(release_flusher, arg);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	lg_shmem_require();
	while (guarded(run_pass, false, false, &failed) && !failed)
		CHECK_FOR_INTERRUPTS();
	proc_exit(0);
}
