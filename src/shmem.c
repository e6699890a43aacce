/*
 * shmem.c — reserve and initialise llm_gateway's shared memory.
 *
 * The segment is sized from llm_gateway.spend_queue_size at postmaster start
 * (shmem_request_hook) and initialised once, under AddinShmemInitLock, when
 * it is first attached.  After a crash restart the postmaster builds a new
 * segment: entries that were still waiting in the old one are lost, which is
 * the one window the README documents.
 */
#include "shmem.h"
#include "account.h"

#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

LgShared *lg_shared = NULL;
HTAB     *lg_provider_states = NULL;
HTAB     *lg_deployment_states = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(LgShared, slots),
					mul_size(sizeof(LgSpendSlot), lg_spend_queue_size));
}

static Size
hash_sizes(void)
{
	Size size =
		add_size(hash_estimate_size(LG_MAX_PROVIDERS, sizeof(LgProviderState)),
				 hash_estimate_size(LG_MAX_DEPLOYMENTS,
									sizeof(LgDeploymentState)));

	size = add_size(size, lg_budget_shmem_size());
	return add_size(size, lg_quota_shmem_size());
}

static void
attach_hashes(void)
{
	HASHCTL info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LgProviderKey);
	info.entrysize = sizeof(LgProviderState);
	lg_provider_states = ShmemInitHash("llm_gateway providers",
									   LG_MAX_PROVIDERS,
									   LG_MAX_PROVIDERS,
									   &info,
									   HASH_ELEM | HASH_BLOBS);
	info.keysize = sizeof(LgDeploymentKey);
	info.entrysize = sizeof(LgDeploymentState);
	lg_deployment_states = ShmemInitHash("llm_gateway deployments",
										 LG_MAX_DEPLOYMENTS,
										 LG_MAX_DEPLOYMENTS,
										 &info,
										 HASH_ELEM | HASH_BLOBS);
	lg_budget_shmem_attach();
	lg_quota_shmem_attach();
}

static void
request_shmem(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(shared_size(), hash_sizes()));
	RequestNamedLWLockTranche("llm_gateway", 3);
}

static void
startup_shmem(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	lg_shared = ShmemInitStruct("llm_gateway", shared_size(), &found);
	if (!found)
	{
		memset(lg_shared, 0, shared_size());
		lg_shared->lock = &(GetNamedLWLockTranche("llm_gateway"))[0].lock;
		lg_shared->route_lock =
			&(GetNamedLWLockTranche("llm_gateway"))[1].lock;
		lg_shared->account_lock =
			&(GetNamedLWLockTranche("llm_gateway"))[2].lock;
		lg_shared->next_event_generation = 1;
		pg_atomic_init_u32(&lg_shared->wake_pending, 0);
		pg_atomic_init_u64(&lg_shared->config_generation, 1);
		lg_shared->nslots = lg_spend_queue_size;
		lg_shared->nfree = lg_spend_queue_size;
		lg_shared->free_head = 0;
		lg_shared->next_generation = 1;
		for (int i = 0; i < lg_spend_queue_size; i++)
			lg_shared->slots[i].next_free =
				(i + 1 < lg_spend_queue_size) ? i + 1 : -1;
	}
	attach_hashes(); /* creates them the first time, attaches afterwards */
	LWLockRelease(AddinShmemInitLock);
}

void
lg_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shmem;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_shmem;
}

/* Every entry point that touches shared state starts here. */
void
lg_shmem_require(void)
{
	if (lg_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_NOT_PRELOADED),
				 errmsg("llm_gateway shared memory is not initialized"),
				 errhint("Add llm_gateway to shared_preload_libraries and "
						 "restart the server.")));
}

/*
 * Wake the worker: at most one SetLatch per wake-up, however many backends
 * ask (the worker clears the flag before it looks for work).
 */
void
lg_worker_wake(void)
{
	Latch *latch;

	if (lg_shared == NULL ||
		pg_atomic_exchange_u32(&lg_shared->wake_pending, 1) != 0)
		return;
	latch = lg_shared->worker_latch;
	if (latch != NULL)
		SetLatch(latch);
}

/* Wait ms on our latch (waking early when it is set), then check for
 * interrupts: the polling step of every wait for another process. */
void
lg_nap(int ms)
{
	(void) WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}
