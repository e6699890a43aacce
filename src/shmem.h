/*
 * shmem.h — the layout of llm_gateway's shared memory.
 *
 * Locking: LgShared.lock protects the spend slots, the free list and the
 * flusher table; LgShared.route_lock protects the provider and deployment
 * state hash tables and the event ring; LgShared.account_lock protects the
 * budget and quota hash tables (budget.c, quota.c).  Each is held only for
 * memory copies and state changes, never across I/O, a catalog access or
 * HTTP, and never two together.  worker_latch/worker_pid are written by the worker alone (at start
 * and exit) and read without the lock; wake_pending is atomic.
 */
#ifndef LG_SHMEM_H
#define LG_SHMEM_H

#include "llm_gateway.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define LG_MAX_FLUSHERS 4

/* Routing state: sized for this many providers and deployments. */
#define LG_MAX_PROVIDERS   512
#define LG_MAX_DEPLOYMENTS 4096
#define LG_WINDOW_S        60 /* rpm, tpm, error rate: the last minute */
#define LG_MAX_EVENTS      512

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
	int           write_failures; /* inserts of its row that failed */
	TimestampTz   retry_at;       /* no writer claims it before */
	LgSpendEntry  entry;
} LgSpendSlot;

/* ---- routing state (limits.c), under LgShared.route_lock ---- */

typedef struct LgProviderKey
{
	Oid  dboid;
	char name[64];
} LgProviderKey;

typedef struct LgSecond
{
	int64  second; /* Unix time of this bucket */
	int32  requests;
	int32  errors;
	int64  tokens;
	double latency_ms; /* sum */
} LgSecond;

typedef enum LgBreaker
{
	LG_BREAKER_CLOSED,
	LG_BREAKER_OPEN,
	LG_BREAKER_HALF_OPEN
} LgBreaker;

/* What the gateway itself observes; maintenance/disabled are configuration. */
typedef enum LgRuntimeStatus
{
	LG_STATUS_ACTIVE,
	LG_STATUS_DEGRADED,
	LG_STATUS_RATE_LIMITED,
	LG_STATUS_CIRCUIT_OPEN
} LgRuntimeStatus;

typedef struct LgProviderState
{
	LgProviderKey key;
	int32         in_flight;
	LgSecond      window[LG_WINDOW_S];
	uint8         breaker;
	int32         consecutive_failures;
	TimestampTz   opened_at;
	int32         probes_in_flight;
	int32         probe_successes;
	uint8         status; /* last published LgRuntimeStatus */
	TimestampTz   status_since;
	TimestampTz   last_rate_limit_at;
	int32         rpm; /* the limits last seen, for the status */
	int32         tpm;
	int32         cooldown_ms;
	char          last_error[160];
} LgProviderState;

typedef struct LgDeploymentKey
{
	Oid  dboid;
	char model[LG_MODEL_MAX];
	char provider[64];
} LgDeploymentKey;

typedef struct LgDeploymentState
{
	LgDeploymentKey key;
	int32           in_flight;
	bool            has_latency;
	double          latency_ewma;
	int64           swrr_current; /* smooth weighted round-robin */
} LgDeploymentState;

typedef enum LgEventState
{
	LG_EVENT_FREE,
	LG_EVENT_PENDING,
	LG_EVENT_CLAIMED
} LgEventState;

typedef enum LgEventKind
{
	LG_EVENT_PROVIDER_STATUS, /* a row of provider_events (and maybe an alert) */
	LG_EVENT_ALERT            /* a budget or rate-limit alert */
} LgEventKind;

/* A budget or rate-limit alert as it waits for the worker (alerts.c). */
typedef struct LgAlertEvent
{
	uint8       type;   /* LgAlertType */
	uint8       unit;   /* LgUnit */
	uint8       period; /* LgPeriod */
	bool        remaining_style;
	bool        suspend;   /* the tenant is suspended from now */
	int32       threshold; /* 1/10000 of the limit */
	int64       budget_id;
	int64       used;
	int64       limit;
	TimestampTz period_start;
	TimestampTz period_end;
	TimestampTz suspended_until;
	char        unit_name[12];
	char        tenant[LG_LABEL_MAX];
	char        agent[LG_LABEL_MAX];
	char        what[128]; /* rate_limited: the limit that was hit */
} LgAlertEvent;

/*
 * Something that happened in a backend and is written by the worker: a
 * provider status change (provider_events) or an alert.
 */
typedef struct LgEvent
{
	uint8        state;
	uint8        kind; /* LgEventKind */
	int          claimer_pid;
	uint64       generation;
	Oid          dboid;
	TimestampTz  at;
	char         provider[64];
	char         from_status[16];
	char         to_status[16];
	char         reason[160];
	LgAlertEvent alert;
} LgEvent;

extern HTAB *lg_provider_states;
extern HTAB *lg_deployment_states;

typedef struct LgShared
{
	LWLock          *lock;
	LWLock          *route_lock;
	LWLock          *account_lock;
	TimestampTz      rates_checked_at; /* last exchange-rate refresh attempt */
	TimestampTz      swept_at;         /* last budget sweep (duties.c) */
	uint64           next_event_generation;
	LgEvent          events[LG_MAX_EVENTS];
	Latch           *worker_latch;
	int              worker_pid;
	pg_atomic_uint32 wake_pending;
	pg_atomic_uint64 config_generation; /* bumped by configuration commits */
	Oid              flusher_db[LG_MAX_FLUSHERS];
	int              nslots;
	int              nfree;
	int              free_head;
	uint64           next_generation;
	LgSpendSlot      slots[FLEXIBLE_ARRAY_MEMBER];
} LgShared;

extern LgShared *lg_shared;

#endif /* LG_SHMEM_H */
