/*
 * maintenance.c — one pass of the periodic work, and llm_maintenance().
 *
 * The background worker runs lg_maintenance_run() every
 * llm_gateway.worker_interval (and, to write spend only, whenever it is
 * woken); llm_maintenance() runs the same code synchronously, in the
 * caller's transaction, and waits for other writers so that the next
 * statement sees every row that could be written.  Each duty is idempotent:
 * a pass may run twice, late, or concurrently with another.
 *
 * Duties: write the spend that callers' transactions did not commit; write
 * the queued provider status changes and alerts (with their NOTIFY); on a
 * full pass also re-derive provider statuses (time moves them on), expire
 * and evict cache entries, and refresh the exchange rates when due.
 * llm_maintenance() also delivers the webhooks that are due; the worker
 * does that between passes, outside any transaction (worker.c).
 */
#include "account.h"

#define FLUSH_BATCH 1000
#define FLUSH_BATCHES \
	20 /* rows per pass at most: FLUSH_BATCH × FLUSH_BATCHES */

PG_FUNCTION_INFO_V1(llm_maintenance);

static void
refresh_rates(LgMaintenance *m)
{
	MemoryContext cxt = CurrentMemoryContext;
	LgOwnerScope  scope;
	char         *error;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	m->rates = lg_rates_refresh(&error);
	m->rates_error = error ? MemoryContextStrdup(cxt, error) : NULL;
	SPI_finish();
	lg_owner_scope_exit(&scope);
}

void
lg_maintenance_run(LgMaintenance *m, bool wait_for_writers)
{
	instr_time start;
	instr_time elapsed;
	int        batches = 0;

	INSTR_TIME_SET_CURRENT(start);
	memset(&m->spend, 0, sizeof(m->spend));
	do
		m->more = lg_spend_flush(&m->spend, FLUSH_BATCH);
	while (m->more && ++batches < FLUSH_BATCHES);
	if (wait_for_writers && !m->more)
		lg_spend_wait_for_writers(&m->spend);
	if (m->full)
	{
		lg_limits_refresh_statuses();
		m->cache_evicted = lg_cache_evict();
		refresh_rates(m);
	}
	if (m->full)
		lg_duties_run(m);
	m->events_written = lg_events_flush();
	if (wait_for_writers)
		lg_events_wait_for_writers();
	if (m->deliver_webhooks)
		m->webhooks = lg_webhook_deliver_here(LG_WEBHOOK_BATCH);
	if (m->full)
		lg_duty_partitions(m);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	m->duration_ms = INSTR_TIME_GET_MILLISEC(elapsed);
}

Jsonb *
lg_maintenance_jsonb(const LgMaintenance *m)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b,
					 "{\"at\": \"%s\", \"full\": %s, \"duration_ms\": %.3f, ",
					 timestamptz_to_str(m->at),
					 m->full ? "true" : "false",
					 m->duration_ms);
	appendStringInfo(&b,
					 "\"spend\": {\"written\": %d, \"settled\": %d, "
					 "\"pending\": %d, \"failed\": %d, "
					 "\"discarded\": %d, \"more\": %s}, \"events_written\": "
					 "%d, "
					 "\"cache_evicted\": " INT64_FORMAT ", ",
					 m->spend.written,
					 m->spend.settled,
					 m->spend.pending,
					 m->spend.failed,
					 m->spend.discarded,
					 m->more ? "true" : "false",
					 m->events_written,
					 m->cache_evicted);
	appendStringInfo(&b,
					 "\"rates_refreshed\": %d, \"rates_error\": ",
					 m->rates);
	if (m->rates_error)
		escape_json(&b, m->rates_error);
	else
		appendStringInfoString(&b, "null");
	appendStringInfo(&b,
					 ", \"webhooks_delivered\": %d, "
					 "\"rolled_up\": " INT64_FORMAT
					 ", \"periods_closed\": %d, \"alerts_swept\": %d, "
					 "\"reconciled\": %d, \"partitions\": %s}",
					 m->webhooks,
					 m->rolled_up,
					 m->periods_closed,
					 m->alerts_swept,
					 m->reconciled,
					 m->partitions ? m->partitions : "null");
	return lg_jfinish(&b);
}

/*
 * llm_maintenance(at timestamptz DEFAULT now()) RETURNS jsonb
 *
 * EXECUTE is granted to llm_gateway_admin only.  "at" is the moment the
 * pass acts as of (later duties use it for period boundaries).
 */
Datum
llm_maintenance(PG_FUNCTION_ARGS)
{
	LgMaintenance m;

	lg_shmem_require();
	PreventCommandIfReadOnly("llm_maintenance()");
	memset(&m, 0, sizeof(m));
	m.at = PG_ARGISNULL(0) ? GetCurrentTransactionStartTimestamp()
						   : PG_GETARG_TIMESTAMPTZ(0);
	m.full = true;
	m.forced = true;
	m.deliver_webhooks = true;
	lg_maintenance_run(&m, true);
	PG_RETURN_JSONB_P(lg_maintenance_jsonb(&m));
}
