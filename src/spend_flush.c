/*
 * spend_flush.c — the writers' side of the spend queue: the worker's pass and
 * llm_maintenance() claim the entries that must be written, insert them in
 * their own transaction, and free them at its commit (spend.c's transaction
 * callback does that, for callers and writers alike).
 *
 * Locking: lg_shared->lock, as in spend.c; the commit log is read outside it.
 */
#include "spend_internal.h"

#include "access/transam.h"
#include "access/xact.h"
#include "utils/resowner.h"
#include "storage/procarray.h"
#include "utils/wait_event.h"

#define WAIT_MS       10
#define WAIT_LIMIT_MS 10000

typedef struct Candidate
{
	int           slot;
	uint64        generation;
	TransactionId xid;
	bool          inserted;
	bool          decided;
	bool          committed;
	int           owner_pid;
} Candidate;

/* Claim a slot for this backend and copy its entry out.  Lock held. */
static void
claim(int i, LgSpendEntry *out)
{
	LgSpendSlot *s = &lg_shared->slots[i];

	s->state = LG_SLOT_CLAIMED;
	s->claimer_pid = MyProcPid;
	memcpy(out, &s->entry, sizeof(LgSpendEntry));
	lg_spend_ref_add(&lg_spend_claimed, i, s->generation);
}

/*
 * Claim up to max_rows entries of this database that must be written:
 * READY ones, and HELD ones whose transaction ended without committing
 * their row.  Returns the number copied into *entries.
 */
static int
claim_batch(LgSpendEntry *entries, int max_rows, LgSpendReport *report)
{
	Candidate  *cand = palloc(sizeof(Candidate) * lg_shared->nslots);
	int         ncand = 0;
	int         n = 0;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < lg_shared->nslots && n < max_rows; i++)
	{
		LgSpendSlot *s = &lg_shared->slots[i];

		if (s->dboid != MyDatabaseId)
			continue;
		if (s->state == LG_SLOT_READY && s->retry_at <= now)
			claim(i, &entries[n++]);
		else if (s->state == LG_SLOT_HELD)
			cand[ncand++] = (Candidate){i,
										s->generation,
										s->xid,
										s->inserted,
										false,
										false,
										s->owner_pid};
	}
	LWLockRelease(lg_shared->lock);

	/* the commit log, outside the lock */
	for (int c = 0; c < ncand; c++)
	{
		/*
		 * Without an xid (the worker writes the row), a held slot is a call
		 * in flight while its owner lives: a backend that ends hands its
		 * slots over in its exit callback.
		 */
		if (TransactionIdIsValid(cand[c].xid)
				? TransactionIdIsInProgress(cand[c].xid)
				: BackendPidGetProc(cand[c].owner_pid) != NULL)
			continue;
		cand[c].decided = true;
		cand[c].committed =
			cand[c].inserted && TransactionIdDidCommit(cand[c].xid);
	}

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int c = 0; c < ncand; c++)
	{
		LgSpendSlot *s = &lg_shared->slots[cand[c].slot];

		if (s->generation != cand[c].generation || s->state != LG_SLOT_HELD)
			continue;
		if (!cand[c].decided)
			report->pending++;
		else if (cand[c].committed || s->entry.usage_id == 0)
		{
			lg_spend_slot_free(cand[c].slot);
			report->settled++;
		}
		else if (n < max_rows)
			claim(cand[c].slot, &entries[n++]);
	}
	LWLockRelease(lg_shared->lock);
	pfree(cand);
	return n;
}

static void
insert_rows(const LgSpendEntry *entries, int n)
{
	LgOwnerScope scope;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lg_ledger_insert_many(entries, n);
	SPI_finish();
	lg_owner_scope_exit(&scope);
}

/*
 * Insert rows in a subtransaction: true if they are in, false (the error
 * logged when asked) if the insert failed and was rolled back.
 */
static bool
insert_guarded(const LgSpendEntry *entries, int n, bool log_failure)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		insert_rows(entries, n);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (log_failure)
			ereport(LOG,
					(errmsg("llm_gateway could not write ledger "
							"row " INT64_FORMAT " of tenant \"%s\": %s",
							entries[0].usage_id,
							entries[0].tenant,
							error->message),
					 errhint("The row stays in the spend queue and is tried "
							 "again, less and less often; other rows are "
							 "written meanwhile.")));
		FreeErrorData(error);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/*
 * A claimed row that could not be written goes back to the queue, to be
 * tried again after a wait that doubles with each failure (up to a minute).
 */
static void
give_back(const SlotRef *ref)
{
	LgSpendSlot *s;

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	s = lg_spend_slot_if_current(ref);
	if (s && s->state == LG_SLOT_CLAIMED && s->claimer_pid == MyProcPid)
	{
		int64 wait_ms = (int64) 1000 << Min(s->write_failures, 6);

		s->write_failures++;
		s->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  Min(wait_ms, 60000));
		s->state = LG_SLOT_READY;
		s->claimer_pid = 0;
	}
	LWLockRelease(lg_shared->lock);
}

/*
 * Write what must be written, in the current transaction: the claimed slots
 * are freed when it commits and handed back when it aborts.  One statement
 * for the whole batch; if it fails, row by row, so that a row the ledger
 * refuses holds back no other.  Returns true when max_rows were claimed
 * (there may be more).
 */
bool
lg_spend_flush(LgSpendReport *report, int max_rows)
{
	LgSpendEntry *entries;
	int           first = lg_spend_claimed.n;
	int           n;
	int           failed = 0;

	lg_spend_init_backend();
	entries = palloc(sizeof(LgSpendEntry) * max_rows);
	n = claim_batch(entries, max_rows, report);
	/* entries[i] is the slot of lg_spend_claimed.refs[first + i] */
	if (n > 0 && !insert_guarded(entries, n, false))
	{
		for (int i = 0; i < n; i++)
			if (!insert_guarded(&entries[i], 1, true))
			{
				give_back(&lg_spend_claimed.refs[first + i]);
				failed++;
			}
	}
	report->written += n - failed;
	report->failed += failed;
	pfree(entries);
	return n == max_rows;
}

/*
 * Wait (a bounded time) until no other writer holds lg_spend_claimed entries of this
 * database, so that llm_maintenance() returns only when every row that could
 * be written has been: the next statement sees them all.
 */
void
lg_spend_wait_for_writers(LgSpendReport *report)
{
	for (int waited = 0; waited < WAIT_LIMIT_MS; waited += WAIT_MS)
	{
		bool busy = false;

		LWLockAcquire(lg_shared->lock, LW_SHARED);
		for (int i = 0; i < lg_shared->nslots && !busy; i++)
		{
			LgSpendSlot *s = &lg_shared->slots[i];

			busy = s->dboid == MyDatabaseId && s->state == LG_SLOT_CLAIMED &&
				   s->claimer_pid != MyProcPid;
		}
		LWLockRelease(lg_shared->lock);
		if (!busy)
			return;
		lg_nap(WAIT_MS);
		(void) lg_spend_flush(report, 1000);
	}
}

/*
 * Entries of this database that a writer will still get: READY or CLAIMED
 * ones, and HELD ones whose owner is alive (its transaction may yet abort).
 * HELD entries of a prepared transaction wait for COMMIT/ROLLBACK PREPARED
 * and are not counted.
 */
int
lg_spend_waiting(void)
{
	int n = 0;

	LWLockAcquire(lg_shared->lock, LW_SHARED);
	for (int i = 0; i < lg_shared->nslots; i++)
	{
		LgSpendSlot *s = &lg_shared->slots[i];

		if (s->dboid != MyDatabaseId || s->state == LG_SLOT_FREE)
			continue;
		if (s->state != LG_SLOT_HELD ||
			BackendPidGetProc(s->owner_pid) != NULL)
			n++;
	}
	LWLockRelease(lg_shared->lock);
	return n;
}

/* Drop the waiting entries of a database that no longer has the extension. */
int
lg_spend_discard(Oid dboid)
{
	int n = 0;

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < lg_shared->nslots; i++)
	{
		LgSpendSlot *s = &lg_shared->slots[i];

		if (s->state == LG_SLOT_READY && s->dboid == dboid)
		{
			lg_spend_slot_free(i);
			n++;
		}
	}
	LWLockRelease(lg_shared->lock);
	return n;
}

/*
 * The other databases with entries waiting for a writer (at most max).  A
 * slot of another database becomes READY at its caller's abort or at
 * settle; the flusher started for it also resolves any HELD slot there.
 */
int
lg_spend_other_databases(Oid *dboids, int max)
{
	int n = 0;

	LWLockAcquire(lg_shared->lock, LW_SHARED);
	for (int i = 0; i < lg_shared->nslots && n < max; i++)
	{
		LgSpendSlot *s = &lg_shared->slots[i];
		bool         known = false;

		if (s->dboid == MyDatabaseId || s->state != LG_SLOT_READY)
			continue;
		for (int k = 0; k < n && !known; k++)
			known = dboids[k] == s->dboid;
		if (!known)
			dboids[n++] = s->dboid;
	}
	LWLockRelease(lg_shared->lock);
	return n;
}

/*
 * The ledger ids of this database that a writer may still write (every
 * slot that holds one), into *ids (palloc'd) — at most nslots of them.
 * Returns false when some slot's id is being drawn right now: then nothing
 * can be said, as that id may be below what the caller read from the
 * sequence.  A caller reads the sequence first, then asks this, then reads
 * the ledger with a new snapshot: every id up to the sequence's that is not
 * in *ids is either visible then or never written (a slot is freed only
 * after its row's transaction is visible as committed).  The rows this
 * backend's own transaction wrote are not pending for it.
 */
bool
lg_spend_pending_ids(int64 **ids, int *nids)
{
	bool drawing = false;
	int  n = 0;

	*ids = palloc(sizeof(int64) * lg_shared->nslots);
	LWLockAcquire(lg_shared->lock, LW_SHARED);
	for (int i = 0; i < lg_shared->nslots && !drawing; i++)
	{
		const LgSpendSlot *s = &lg_shared->slots[i];

		if (s->state == LG_SLOT_FREE || s->dboid != MyDatabaseId)
			continue;
		/* written by this transaction: visible to it, and commits with it */
		if (s->state == LG_SLOT_CLAIMED && s->claimer_pid == MyProcPid)
			continue;
		if (s->entry.usage_id == 0)
			drawing = true;
		else
			(*ids)[n++] = s->entry.usage_id;
	}
	LWLockRelease(lg_shared->lock);
	*nids = n;
	return !drawing;
}

/* Does the spend queue hold a row of this tenant (in this database)? */
bool
lg_spend_pending_for(const char *tenant)
{
	bool found = false;

	LWLockAcquire(lg_shared->lock, LW_SHARED);
	for (int i = 0; i < lg_shared->nslots && !found; i++)
	{
		const LgSpendSlot *s = &lg_shared->slots[i];

		found = s->state != LG_SLOT_FREE && s->dboid == MyDatabaseId &&
				strcmp(s->entry.tenant, tenant) == 0;
	}
	LWLockRelease(lg_shared->lock);
	return found;
}
