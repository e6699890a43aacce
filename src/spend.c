/*
 * spend.c — every provider call that may have cost money reaches the ledger.
 *
 * Before a request leaves the server, lg_spend_begin() puts the attempt's
 * ledger row into a shared-memory slot, pessimistically: status
 * "cancelled", the estimated prompt cost, no answer.  When the attempt is
 * over, lg_spend_settle() replaces it with the real outcome.  From then on
 * the row is written exactly once, whatever happens to the caller:
 *
 *  - Normally the caller also inserts the row in its own transaction (so it
 *    can read it at once), and its commit frees the slot.
 *  - If that transaction aborts (ROLLBACK, an error after the answer, query
 *    cancel, statement_timeout, pg_terminate_backend), the transaction
 *    callback hands the slot to the worker, which writes it in a short
 *    transaction of its own.
 *  - Beyond llm_gateway.transactional_ledger_rows calls in one transaction,
 *    or when the queue runs low, the row goes to the worker only, so a batch
 *    of thousands of calls in one statement never holds thousands of slots.
 *
 * Rows carry an id drawn from the ledger's sequence before the call, and the
 * writers insert with ON CONFLICT DO NOTHING, so a row can never be written
 * twice.  A slot whose transaction is no longer running is resolved from the
 * commit log (TransactionIdDidCommit), which also covers callers that died
 * before their callbacks ran.
 *
 * Locking: lg_shared->lock, held for state changes and copies only.  The
 * commit log is read outside it.  See shmem.h for the state machine.
 */
#include "spend_internal.h"
#include "account.h"

#include "access/transam.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "storage/ipc.h"
#include "storage/procarray.h"
#include "utils/lsyscache.h"
#include "utils/wait_event.h"

/* Waiting for a free slot: poll every WAIT_MS, give up after WAIT_LIMIT_MS. */
#define WAIT_MS       10
#define WAIT_LIMIT_MS 10000

/* The slots this backend owns as a caller (its claimed ones: spend_internal.h). */
static RefList held = {NULL, 0, 0};
RefList        lg_spend_claimed = {NULL, 0, 0};
static int     held_in_txn = 0; /* slots of this xact the caller inserts */
static bool    callbacks_registered = false;

/* ---- small helpers ---- */

void
lg_spend_ref_add(RefList *list, int slot, uint64 generation)
{
	if (list->n == list->cap)
	{
		int newcap = list->cap ? list->cap * 2 : 16;

		list->refs = list->refs
						 ? repalloc(list->refs, newcap * sizeof(SlotRef))
						 : MemoryContextAlloc(TopMemoryContext,
											  newcap * sizeof(SlotRef));
		list->cap = newcap;
	}
	list->refs[list->n].slot = slot;
	list->refs[list->n].generation = generation;
	list->n++;
}

LgSpendSlot *
lg_spend_slot_if_current(const SlotRef *ref)
{
	LgSpendSlot *s = &lg_shared->slots[ref->slot];

	return s->generation == ref->generation ? s : NULL;
}

/* Call with the lock held. */
void
lg_spend_slot_free(int i)
{
	LgSpendSlot *s = &lg_shared->slots[i];

	s->state = LG_SLOT_FREE;
	s->generation = 0;
	s->next_free = lg_shared->free_head;
	lg_shared->free_head = i;
	lg_shared->nfree++;
}

static void
copy_text(char *dst, size_t size, const char *src)
{
	size_t len;

	if (src == NULL)
	{
		dst[0] = '\0';
		return;
	}
	len = strlen(src);
	if (len >= size)
		len = pg_mbcliplen(src, len, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static Oid
usage_sequence(void)
{
	Oid nsp = get_namespace_oid(LG_SCHEMA, false);
	Oid seq = get_relname_relid("usage_id_seq", nsp);

	if (!OidIsValid(seq))
		elog(ERROR, "sequence %s.usage_id_seq does not exist", LG_SCHEMA);
	return seq;
}

/* ---- the entry of an attempt ---- */

static void
fill_common(LgSpendEntry       *e,
			const LgCall       *call,
			const LgDeployment *dep,
			int                 attempt)
{
	const LgOptions *o = &call->req->opt;

	memset(e, 0, sizeof(*e));
	e->request_id = call->request_id;
	e->created_at = call->started_at;
	e->attempt = attempt;
	copy_text(e->tenant, sizeof(e->tenant), call->tenant->tenant);
	copy_text(e->agent, sizeof(e->agent), o->agent);
	copy_text(e->channel, sizeof(e->channel), o->channel);
	copy_text(e->session_id, sizeof(e->session_id), o->session_id);
	copy_text(e->conversation_id,
			  sizeof(e->conversation_id),
			  o->conversation_id);
	copy_text(e->model, sizeof(e->model), dep->model);
	copy_text(e->provider, sizeof(e->provider), dep->provider.name);
	copy_text(e->upstream_model,
			  sizeof(e->upstream_model),
			  dep->upstream_model);
	copy_text(e->requested_model, sizeof(e->requested_model), call->requested);
	copy_text(e->downgraded_from,
			  sizeof(e->downgraded_from),
			  call->downgraded_from);
	copy_text(e->currency, sizeof(e->currency), call->tenant->currency);
	copy_text(e->exchange_rate,
			  sizeof(e->exchange_rate),
			  call->tenant->exchange_rate);
	copy_text(e->rate_source,
			  sizeof(e->rate_source),
			  call->tenant->rate_source);
	e->over_budget = call->account != NULL && call->account->over_budget;
	lg_privacy_fill(e, call, NULL);
	if (o->metadata)
		copy_text(e->metadata,
				  sizeof(e->metadata),
				  JsonbToCString(NULL,
								 &o->metadata->root,
								 VARSIZE(o->metadata)));
}

/*
 * What the ledger says if nothing more is learnt: the request was sent and
 * may have been billed for its prompt.
 */
static void
fill_in_flight(LgSpendEntry *e, const LgCall *call, const LgDeployment *dep)
{
	LgUsage usage = {0};

	usage.input_tokens = lg_prompt_estimate(call->req);
	strlcpy(e->status, "cancelled", sizeof(e->status));
	strlcpy(e->error,
			"the call was interrupted before the provider answered",
			sizeof(e->error));
	e->usage_estimated = true;
	e->input_tokens = usage.input_tokens;
	e->cost_picousd = lg_cost_picousd(&usage, &dep->price);
}

static void
fill_outcome(LgSpendEntry *e, const LgAttempt *a)
{
	const LgUsage *u = &a->reply.usage;

	strlcpy(e->status, lg_attempt_status_name(a->status), sizeof(e->status));
	e->http_status = (int32) a->http_status;
	if (a->status != LG_ATTEMPT_OK)
	{
		strlcpy(e->error_code,
				unpack_sql_state(a->sqlstate),
				sizeof(e->error_code));
		copy_text(e->error,
				  sizeof(e->error),
				  a->detail ? psprintf("%s: %s", a->error, a->detail)
							: a->error);
	}
	else
		e->error[0] = '\0';
	e->input_tokens = u->input_tokens;
	e->cached_tokens = u->cached_tokens;
	e->cache_write_tokens = u->cache_write_tokens;
	e->reasoning_tokens = u->reasoning_tokens;
	e->output_tokens = u->output_tokens;
	e->usage_estimated = a->reply.usage_estimated;
	e->cost_picousd = a->cost_picousd;
	e->latency_ms = a->latency_ms;
	if (a->started_at != 0)
		e->created_at = a->started_at;
	e->cached = a->cached;
	e->was_fallback = a->was_fallback;
	e->saved_tokens = a->saved_tokens;
	e->saved_picousd = a->saved_picousd;
	copy_text(e->fallback_reason,
			  sizeof(e->fallback_reason),
			  a->fallback_reason);
	if (a->reply.upstream_model)
		copy_text(e->upstream_model,
				  sizeof(e->upstream_model),
				  a->reply.upstream_model);
	copy_text(e->finish_reason,
			  sizeof(e->finish_reason),
			  a->reply.finish_reason);
	copy_text(e->provider_request_id,
			  sizeof(e->provider_request_id),
			  a->reply.provider_request_id);
}

/* ---- transaction and exit callbacks ---- */

/* Hand every slot this backend owns or claimed over to the writers. */
static void
release_all_to_writers(void)
{
	bool wake = false;

	if (held.n == 0 && lg_spend_claimed.n == 0)
		return;
	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < held.n; i++)
	{
		LgSpendSlot *s = lg_spend_slot_if_current(&held.refs[i]);

		if (s && s->state == LG_SLOT_HELD && s->owner_pid == MyProcPid)
		{
			if (s->entry.usage_id == 0) /* no id drawn: nothing was sent */
				lg_spend_slot_free(held.refs[i].slot);
			else
			{
				s->state = LG_SLOT_READY;
				wake = true;
			}
		}
	}
	for (int i = 0; i < lg_spend_claimed.n; i++)
	{
		LgSpendSlot *s = lg_spend_slot_if_current(&lg_spend_claimed.refs[i]);

		if (s && s->state == LG_SLOT_CLAIMED && s->claimer_pid == MyProcPid)
		{
			s->state = LG_SLOT_READY;
			wake = true;
		}
	}
	LWLockRelease(lg_shared->lock);
	held.n = lg_spend_claimed.n = held_in_txn = 0;
	if (wake)
		lg_worker_wake();
}

/*
 * At commit: a row the caller inserted is now durable, so its slot is free;
 * anything else (inserted by a subtransaction that rolled back, say) goes to
 * the writers.  The rows this backend wrote as a writer are durable too.
 */
static void
settle_at_commit(void)
{
	bool wake = false;

	for (int i = 0; i < held.n; i++)
	{
		LgSpendSlot  *s;
		TransactionId xid;
		bool          inserted;
		bool          committed;

		LWLockAcquire(lg_shared->lock, LW_SHARED);
		s = lg_spend_slot_if_current(&held.refs[i]);
		if (s == NULL || s->state != LG_SLOT_HELD || s->owner_pid != MyProcPid)
		{
			LWLockRelease(lg_shared->lock);
			continue;
		}
		xid = s->xid;
		inserted = s->inserted;
		LWLockRelease(lg_shared->lock);

		committed = inserted && TransactionIdDidCommit(xid);
		LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
		s = lg_spend_slot_if_current(&held.refs[i]);
		if (s && s->state == LG_SLOT_HELD && s->owner_pid == MyProcPid)
		{
			if (committed)
				lg_spend_slot_free(held.refs[i].slot);
			else
			{
				s->state = LG_SLOT_READY;
				wake = true;
			}
		}
		LWLockRelease(lg_shared->lock);
	}
	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < lg_spend_claimed.n; i++)
	{
		LgSpendSlot *s = lg_spend_slot_if_current(&lg_spend_claimed.refs[i]);

		if (s && s->state == LG_SLOT_CLAIMED && s->claimer_pid == MyProcPid)
			lg_spend_slot_free(lg_spend_claimed.refs[i].slot);
	}
	LWLockRelease(lg_shared->lock);
	held.n = lg_spend_claimed.n = held_in_txn = 0;
	if (wake)
		lg_worker_wake();
}

/*
 * At PREPARE TRANSACTION the outcome is decided later, by another session:
 * leave owned slots HELD (resolved from the commit log once the prepared
 * transaction ends) and turn lg_spend_claimed ones into HELD slots of this xid.
 */
static void
settle_at_prepare(void)
{
	TransactionId xid = GetTopTransactionIdIfAny();

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < lg_spend_claimed.n; i++)
	{
		LgSpendSlot *s = lg_spend_slot_if_current(&lg_spend_claimed.refs[i]);

		if (s && s->state == LG_SLOT_CLAIMED && s->claimer_pid == MyProcPid)
		{
			s->state = LG_SLOT_HELD;
			s->xid = xid;
			s->inserted = true;
		}
	}
	LWLockRelease(lg_shared->lock);
	held.n = lg_spend_claimed.n = held_in_txn = 0;
}

static void
xact_callback(XactEvent event, pg_attribute_unused() void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			settle_at_commit();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			release_all_to_writers();
			break;
		case XACT_EVENT_PREPARE:
			settle_at_prepare();
			break;
		default:
			break;
	}
}

static void
exit_callback(pg_attribute_unused() int code, pg_attribute_unused() Datum arg)
{
	release_all_to_writers();
}

void
lg_spend_init_backend(void)
{
	if (callbacks_registered)
		return;
	lg_shmem_require();
	RegisterXactCallback(xact_callback, NULL);
	before_shmem_exit(exit_callback, (Datum) 0);
	callbacks_registered = true;
}

/* ---- the caller's side ---- */

/* A free slot, or -1.  Call with the lock held. */
static int
slot_alloc(void)
{
	int i = lg_shared->free_head;

	if (i < 0)
		return -1;
	lg_shared->free_head = lg_shared->slots[i].next_free;
	lg_shared->nfree--;
	lg_shared->slots[i].generation = lg_shared->next_generation++;
	return i;
}

static int
slot_alloc_waiting(void)
{
	int waited = 0;

	for (;;)
	{
		int i;

		LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
		i = slot_alloc();
		if (i >= 0)
			return i; /* lock still held */
		LWLockRelease(lg_shared->lock);
		if (waited >= WAIT_LIMIT_MS)
			ereport(ERROR,
					(errcode(ERRCODE_LG_SPEND_QUEUE_FULL),
					 errmsg("the llm_gateway spend queue is full"),
					 errdetail("All %d slots hold calls whose ledger rows are "
							   "not written yet.",
							   lg_shared->nslots),
					 errhint("Commit long transactions that make many calls, "
							 "check that the "
							 "llm_gateway worker runs, or raise "
							 "llm_gateway.spend_queue_size.")));
		lg_worker_wake();
		lg_nap(WAIT_MS);
		waited += WAIT_MS;
	}
}

/*
 * The caller keeps its own copy of the row (visible in its transaction) for
 * the first calls of a transaction, while the queue has room.
 */
static bool
caller_should_write(void)
{
	return held_in_txn < lg_transactional_ledger_rows &&
		   lg_shared->nfree > lg_shared->nslots / 4;
}

void
lg_spend_begin(LgSpendHandle      *h,
			   const LgCall       *call,
			   const LgDeployment *dep,
			   int                 attempt)
{
	LgSpendEntry *e = palloc(sizeof(LgSpendEntry));
	TransactionId xid;
	LgSpendSlot  *s;

	lg_spend_init_backend();
	fill_common(e, call, dep, attempt);
	fill_in_flight(e, call, dep);
	e->created_at = GetCurrentTimestamp();
	e->usage_id = 0; /* drawn below, once the slot is ours */
	h->caller_writes = caller_should_write();
	/*
	 * Only a row the caller inserts needs its transaction's fate (read from
	 * the commit log): otherwise the call's transaction stays without an
	 * xid, and its commit writes nothing.
	 */
	xid = h->caller_writes ? GetCurrentTransactionId() : InvalidTransactionId;

	h->slot = slot_alloc_waiting(); /* returns with the lock held */
	s = &lg_shared->slots[h->slot];
	h->generation = s->generation;
	s->state = LG_SLOT_HELD;
	s->final = false;
	s->caller_writes = h->caller_writes;
	s->inserted = false;
	s->dboid = MyDatabaseId;
	s->owner_pid = MyProcPid;
	s->xid = xid;
	s->claimer_pid = 0;
	s->write_failures = 0;
	s->retry_at = 0;
	memcpy(&s->entry, e, sizeof(LgSpendEntry));
	LWLockRelease(lg_shared->lock);

	lg_spend_ref_add(&held, h->slot, h->generation);
	if (h->caller_writes)
		held_in_txn++;
	pfree(e);

	/*
	 * The row's id is drawn only now that a slot holds the attempt: every id
	 * up to the sequence's value is either in a slot or written (the
	 * rollups rely on it, lg_spend_pending_ids).  A slot still at id 0
	 * means "an id is being drawn".
	 */
	h->usage_id = nextval_internal(usage_sequence(), false);
	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	s = lg_spend_slot_if_current(&(SlotRef){h->slot, h->generation});
	if (s != NULL)
		s->entry.usage_id = h->usage_id;
	LWLockRelease(lg_shared->lock);
}

/* The call was interrupted in flight: say how in the row that will remain. */
void
lg_spend_interrupted(const LgSpendHandle *h, const char *why)
{
	SlotRef      ref = {h->slot, h->generation};
	LgSpendSlot *s;

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	s = lg_spend_slot_if_current(&ref);
	if (s && s->state == LG_SLOT_HELD && !s->final)
		copy_text(s->entry.error, sizeof(s->entry.error), why);
	LWLockRelease(lg_shared->lock);
}

/*
 * The attempt is over: record its outcome.  A row for the worker alone is
 * handed over now; otherwise the caller inserts *entry in its transaction.
 */
void
lg_spend_settle(LgSpendHandle   *h,
				const LgCall    *call,
				const LgAttempt *attempt,
				LgSpendEntry    *entry)
{
	SlotRef      ref = {h->slot, h->generation};
	LgSpendSlot *s;

	fill_common(entry, call, attempt->dep, attempt->number);
	fill_outcome(entry, attempt);
	lg_privacy_fill(entry, call, attempt);
	entry->usage_id = h->usage_id;

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	s = lg_spend_slot_if_current(&ref);
	if (s == NULL || s->state != LG_SLOT_HELD)
		elog(ERROR,
			 "llm_gateway spend slot %d was taken from its caller",
			 h->slot);
	memcpy(&s->entry, entry, sizeof(LgSpendEntry));
	s->final = true;
	if (!h->caller_writes)
		s->state = LG_SLOT_READY;
	LWLockRelease(lg_shared->lock);
	if (!h->caller_writes)
		lg_worker_wake();
}

void
lg_spend_inserted(const LgSpendHandle *h)
{
	SlotRef      ref = {h->slot, h->generation};
	LgSpendSlot *s;

	LWLockAcquire(lg_shared->lock, LW_EXCLUSIVE);
	s = lg_spend_slot_if_current(&ref);
	if (s && s->state == LG_SLOT_HELD)
		s->inserted = true;
	LWLockRelease(lg_shared->lock);
}
