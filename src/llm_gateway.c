/*
 * llm_gateway.c — module magic and _PG_init.
 *
 * The library must be loaded through shared_preload_libraries: the gateway
 * keeps provider health, rate-limit buckets and pending spend in shared
 * memory, which can only be reserved while the postmaster starts.  Loaded any
 * other way (CREATE EXTENSION or a function call in a server that did not
 * preload it), _PG_init refuses with an error and a hint, so that every entry
 * point fails clearly instead of half-working.
 */
#include "llm_gateway.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_LG_NOT_PRELOADED),
				 errmsg("llm_gateway must be loaded via "
						"shared_preload_libraries"),
				 errhint("Add llm_gateway to shared_preload_libraries in "
						 "postgresql.conf and restart the server.")));

	lg_define_settings();
	lg_log_redact_init();
	lg_shmem_init();
	/* pg_upgrade starts the server in binary-upgrade mode: no worker then */
	if (!IsBinaryUpgrade)
		lg_worker_register();
}
