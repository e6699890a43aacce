/*
 * webhook.c — deliver alerts to their webhooks, with retries and a log.
 *
 * An alert written with a webhook URL (its budget's, else
 * llm_gateway.alert_webhook) is "pending" with next_delivery_at set.  A
 * delivery pass picks the due ones, POSTs each one's JSON (the NOTIFY
 * payload plus agent, budget, provider, period and created_at), and records
 * the outcome: 2xx is "delivered"; anything else is retried after
 * llm_gateway.webhook_retry, doubling each time (at most a day), until
 * llm_gateway.webhook_max_attempts, then "failed".  Every attempt is a row
 * of alert_deliveries.  Delivery is at least once: a receiver deduplicates
 * on alert_id (also sent as the X-LLM-Gateway-Alert header).
 *
 * The worker picks in one short transaction, POSTs outside any transaction
 * and records in another, so no row lock is held while a receiver answers;
 * llm_maintenance() does all three in the caller's transaction.  The URL may
 * carry a token: it is never logged nor shown to non-administrators.
 */
#include <math.h>

#include "account.h"
#include "http.h"
#include "spi_util.h"

#include "catalog/pg_type.h"

#define MAX_BACKOFF_S 86400.0

static const char *const pick_sql =
	"SELECT a.id, a.webhook_url, a.delivery_attempts + 1,"
	"       jsonb_build_object('alert_id', a.id, 'created_at', a.created_at,"
	"         'tenant', a.tenant, 'agent', a.agent, 'type', a.type,"
	"         'threshold', a.threshold, 'percent_used', a.percent,"
	"         'used', a.used, 'limit', a.limit_value, 'unit', a.unit,"
	"         'budget_id', a.budget_id, 'provider', a.provider,"
	"         'period_start', a.period_start, 'period_end', a.period_end,"
	"         'message', a.message)::text"
	"  FROM llm_gateway.alerts a"
	" WHERE a.delivery_state = 'pending' AND a.next_delivery_at <= now()"
	" ORDER BY a.next_delivery_at, a.id LIMIT $1";

/* Recorded only if nobody else recorded this attempt meanwhile. */
static const char *const record_sql =
	"WITH upd AS ("
	" UPDATE llm_gateway.alerts"
	"    SET delivery_attempts = $2,"
	"        delivery_state = CASE WHEN $3 THEN 'delivered'"
	"                              WHEN $2 >= $4 THEN 'failed'"
	"                              ELSE 'pending' END,"
	"        delivered_at = CASE WHEN $3 THEN now() END,"
	"        next_delivery_at = CASE WHEN $3 OR $2 >= $4 THEN NULL"
	"                                ELSE now() + make_interval(secs => $5) "
	"END,"
	"        last_delivery_error = $6"
	"  WHERE id = $1 AND delivery_attempts = $2 - 1"
	"    AND delivery_state = 'pending'"
	" RETURNING id)"
	" INSERT INTO llm_gateway.alert_deliveries"
	"  (alert_id, attempt, http_status, error, duration_ms)"
	" SELECT id, $2, $7, $6, round($8::numeric, 3) FROM upd";

static SPIPlanPtr pick_plan = NULL;
static SPIPlanPtr record_plan = NULL;

/* Due deliveries, at most max (SPI connected). */
int
lg_webhook_pick(LgWebhookJob *jobs, int max, MemoryContext cxt)
{
	Oid   types[1] = {INT4OID};
	Datum args[1] = {Int32GetDatum(max)};

	/* not read-only: a fresh snapshot, which sees alerts just committed */
	if (SPI_execute_plan(lg_spi_prepare_once(&pick_plan, pick_sql, 1, types),
						 args,
						 NULL,
						 false,
						 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the alerts to deliver");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		LgWebhookJob *j = &jobs[i];

		memset(j, 0, sizeof(*j));
		j->alert_id = lg_spi_int64((int) i, 1);
		j->url = lg_spi_text((int) i, 2, cxt);
		j->attempt = lg_spi_int32((int) i, 3);
		j->payload = lg_spi_text((int) i, 4, cxt);
	}
	return (int) SPI_processed;
}

/* POST one alert (no transaction needed). */
void
lg_webhook_post(LgWebhookJob *j)
{
	LgHttpRequest  req;
	LgHttpResponse resp;
	instr_time     start;
	instr_time     end;

	memset(&req, 0, sizeof(req));
	req.url = j->url;
	req.headers = list_make2(pstrdup("Content-Type: application/json"),
							 psprintf("X-LLM-Gateway-Alert: " INT64_FORMAT,
									  j->alert_id));
	req.body = j->payload;
	req.body_len = strlen(j->payload);
	req.timeout_ms = lg_webhook_timeout_ms;
	req.connect_timeout_ms = lg_webhook_timeout_ms;
	INSTR_TIME_SET_CURRENT(start);
	lg_http_send(&req, &resp);
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);
	j->duration_ms = INSTR_TIME_GET_MILLISEC(end);
	j->http_status = resp.failure == LG_HTTP_OK ? resp.status : 0;
	j->ok =
		resp.failure == LG_HTTP_OK && resp.status >= 200 && resp.status < 300;
	if (resp.failure != LG_HTTP_OK)
		j->error = pstrdup(resp.error);
	else if (!j->ok)
		j->error = psprintf("HTTP %ld", resp.status);
}

/* Record the outcome of a delivery (SPI connected). */
void
lg_webhook_record(const LgWebhookJob *j)
{
	Oid    types[8] = {INT8OID,
					   INT4OID,
					   BOOLOID,
					   INT4OID,
					   FLOAT8OID,
					   TEXTOID,
					   INT4OID,
					   FLOAT8OID};
	Datum  v[8];
	char   n[8] = "        ";
	double backoff_s = (double) lg_webhook_retry_ms / 1000.0 *
					   pow(2.0, Min(j->attempt - 1, 30));

	v[0] = Int64GetDatum(j->alert_id);
	v[1] = Int32GetDatum(j->attempt);
	v[2] = BoolGetDatum(j->ok);
	v[3] = Int32GetDatum(lg_webhook_max_attempts);
	v[4] = Float8GetDatum(Min(backoff_s, MAX_BACKOFF_S));
	if (j->error)
		v[5] = CStringGetTextDatum(j->error);
	else
		n[5] = 'n';
	v[6] = Int32GetDatum((int32) j->http_status);
	if (j->http_status == 0)
		n[6] = 'n';
	v[7] = Float8GetDatum(j->duration_ms);
	if (SPI_execute_plan(lg_spi_prepare_once(&record_plan,
											 record_sql,
											 8,
											 types),
						 v,
						 n,
						 false,
						 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record a webhook delivery");
}

/* Pick, POST and record in the current transaction (llm_maintenance). */
int
lg_webhook_deliver_here(int max)
{
	LgWebhookJob *jobs = palloc(sizeof(LgWebhookJob) * max);
	LgOwnerScope  scope;
	int           n;

	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = lg_webhook_pick(jobs, max, CurrentMemoryContext);
	for (int i = 0; i < n; i++)
	{
		lg_webhook_post(&jobs[i]);
		lg_webhook_record(&jobs[i]);
	}
	SPI_finish();
	lg_owner_scope_exit(&scope);
	return n;
}
