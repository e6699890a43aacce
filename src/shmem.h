/*
 * shmem.h — the layout of llm_gateway's shared memory.
 *
 * Locking: LgShared.lock (one LWLock of the "llm_gateway" tranche) protects
 * the spend slots, the free list and the flusher table.  It is held only for
 * memory copies and state changes, never across I/O, a catalog access or
 * HTTP.  worker_latch/worker_pid are written by the worker alone (at start
 * and exit) and read without the lock; wake_pending is atomic.
 */
#ifndef LG_SHMEM_H
#define LG_SHMEM_H

#include "llm_gateway.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define LG_MAX_FLUSHERS 4

/*
 * A slot's life:
 *   FREE -> HELD      a caller is about to call a provider (lg_spend_begin)
 *   HELD -> READY     the caller's transaction aborted, or the row is for the
 *                     worker alone (caller_writes false, once final)
 *   HELD -> FREE      the caller's transaction committed its own row
 *   READY -> CLAIMED  a writer (worker or llm_maintenance) is inserting it
 *   CLAIMED -> FREE   the writer's transaction committed
 *   CLAIMED -> READY  the writer's transaction aborted
 * A HELD slot whose transaction is no longer in progress is resolved by its
 * xid: committed with the row inserted means FREE, anything else means the
 * row must be written.  That also covers owners that died.
 */
typedef enum LgSlotState
{
	LG_SLOT_FREE = 0,
	LG_SLOT_HELD,
	LG_SLOT_READY,
	LG_SLOT_CLAIMED
} LgSlotState;

typedef struct LgSpendSlot
{
	uint8         state;
	bool          final; /* the attempt is over; entry is its outcome */
	bool          caller_writes; /* the caller inserts the row in its xact */
	bool          inserted;      /* ... and has done so */
	int32         next_free;
	uint64        generation; /* changes at each allocation (ABA guard) */
	Oid           dboid;
	int           owner_pid;
	TransactionId xid; /* the caller's (sub)transaction */
	int           claimer_pid;
	LgSpendEntry  entry;
} LgSpendSlot;

typedef struct LgShared
{
	LWLock          *lock;
	Latch           *worker_latch;
	int              worker_pid;
	pg_atomic_uint32 wake_pending;
	Oid              flusher_db[LG_MAX_FLUSHERS];
	int              nslots;
	int              nfree;
	int              free_head;
	uint64           next_generation;
	LgSpendSlot      slots[FLEXIBLE_ARRAY_MEMBER];
} LgShared;

extern LgShared *lg_shared;

#endif /* LG_SHMEM_H */
