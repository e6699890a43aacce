/*
 * alerts.c — alerts, from the backend that notices to the LISTEN client.
 *
 * A backend that crosses a budget threshold (account.c, exactly one backend
 * per threshold and period) or is refused by a rate limit queues an alert
 * in the event ring of shared memory; provider alerts come from the status
 * changes already queued there (limits.c).  The worker's pass (events.c)
 * writes each into llm_gateway.alerts and, in the same statement,
 * pg_notify()s llm_gateway_alerts with the contract's payload, so LISTEN
 * clients hear of an alert exactly when its row commits.  The unique index
 * on (budget, tenant, threshold, period) makes a second write of a budget
 * alert (after a restart, say) a no-op.  A budget that exceeds its limit
 * with "suspend" set suspends the tenant in the same transaction.
 *
 * Webhooks are delivered afterwards (webhook.c).
 */
#include "account.h"
#include "shmem.h"
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/formatting.h"

PG_FUNCTION_INFO_V1(llm_alert_ack);

#define NPARAMS 15

static const char *const insert_sql =
	"WITH ins AS ("
	" INSERT INTO llm_gateway.alerts AS a"
	"  (created_at, type, tenant, agent, budget_id, provider, threshold, used,"
	"   limit_value, unit, percent, period_start, period_end, message,"
	"   webhook_url, delivery_state, next_delivery_at)"
	" SELECT $1, $2, $3, $4, $5, $6, trim_scale($7::numeric), $8::numeric,"
	"        $9::numeric,"
	"        $10, $11::numeric, $12, $13, $14, w.url,"
	"        CASE WHEN w.url IS NULL THEN 'none' ELSE 'pending' END,"
	"        CASE WHEN w.url IS NULL THEN NULL ELSE $1 END"
	"   FROM (SELECT coalesce((SELECT b.webhook FROM llm_gateway.budgets b"
	"                           WHERE b.id = $5), $15) AS url) w"
	" ON CONFLICT (budget_id, tenant, threshold, period_start)"
	"  WHERE budget_id IS NOT NULL DO NOTHING"
	" RETURNING a.*)"
	" SELECT ins.id, pg_notify('llm_gateway_alerts', jsonb_build_object("
	"   'alert_id', ins.id, 'tenant', ins.tenant, 'type', ins.type,"
	"   'threshold', ins.threshold, 'percent_used', ins.percent,"
	"   'used', ins.used, 'limit', ins.limit_value, 'unit', ins.unit,"
	"   'message', ins.message)::text)"
	"   FROM ins";

static const Oid insert_types[NPARAMS] = {TIMESTAMPTZOID,
										  TEXTOID,
										  TEXTOID,
										  TEXTOID,
										  INT8OID,
										  TEXTOID,
										  TEXTOID,
										  TEXTOID,
										  TEXTOID,
										  TEXTOID,
										  TEXTOID,
										  TIMESTAMPTZOID,
										  TIMESTAMPTZOID,
										  TEXTOID,
										  TEXTOID};

static const char *const suspend_sql =
	"UPDATE llm_gateway.tenants SET suspended_until = $2, suspended_reason = "
	"$3"
	" WHERE tenant = $1"
	"   AND (suspension_lifted_at IS NULL OR suspension_lifted_at < $4)";

static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr suspend_plan = NULL;

static const char *const type_names[] = {"budget_warning",
										 "budget_critical",
										 "budget_exceeded",
										 "daily_warning",
										 "daily_exceeded",
										 "rate_limited",
										 "provider_error",
										 "circuit_open",
										 "circuit_closed"};

const char *
lg_alert_type_name(LgAlertType type)
{
	return type_names[type];
}

/* ---- queueing (any backend) ---- */

/* A free slot of the event ring, route_lock held; alerts never evict. */
static LgEvent *
free_event(void)
{
	for (int i = 0; i < LG_MAX_EVENTS; i++)
		if (lg_shared->events[i].state == LG_EVENT_FREE)
			return &lg_shared->events[i];
	return NULL;
}

static bool
push(const LgAlertEvent *alert)
{
	LgEvent *e;

	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	if ((e = free_event()) != NULL)
	{
		memset(e, 0, sizeof(*e));
		e->state = LG_EVENT_PENDING;
		e->kind = LG_EVENT_ALERT;
		e->generation = lg_shared->next_event_generation++;
		e->dboid = MyDatabaseId;
		e->at = GetCurrentTimestamp();
		e->alert = *alert;
	}
	LWLockRelease(lg_shared->route_lock);
	if (e != NULL)
		lg_worker_wake();
	return e != NULL;
}

static LgAlertType
budget_alert_type(const LgBudget *b, int32 threshold)
{
	if (b->period == LG_PERIOD_DAILY)
		return threshold >= LG_THRESHOLD_ONE ? LG_ALERT_DAILY_EXCEEDED
											 : LG_ALERT_DAILY_WARNING;
	if (threshold >= LG_THRESHOLD_ONE)
		return LG_ALERT_BUDGET_EXCEEDED;
	return threshold >= 9000 ? LG_ALERT_BUDGET_CRITICAL
							 : LG_ALERT_BUDGET_WARNING;
}

/* Queue a budget alert; false when the ring is full (retry later). */
bool
lg_alert_budget(const char     *tenant,
				const LgBudget *b,
				int32           threshold,
				int64           used,
				bool            suspend,
				TimestampTz     suspended_until)
{
	LgAlertEvent a;

	memset(&a, 0, sizeof(a));
	a.type = (uint8) budget_alert_type(b, threshold);
	a.unit = (uint8) b->unit;
	a.period = (uint8) b->period;
	a.remaining_style = b->remaining_style;
	a.suspend = suspend;
	a.threshold = threshold;
	a.budget_id = b->id;
	a.used = used;
	a.limit = b->limit;
	a.period_start = b->period_start;
	a.period_end = b->period_end;
	a.suspended_until = suspended_until;
	strlcpy(a.unit_name, b->unit_name, sizeof(a.unit_name));
	strlcpy(a.tenant, tenant, sizeof(a.tenant));
	strlcpy(a.agent, b->agent ? b->agent : "", sizeof(a.agent));
	return push(&a);
}

void
lg_alert_rate_limited(const char *tenant, const char *agent, const char *what)
{
	LgAlertEvent a;

	memset(&a, 0, sizeof(a));
	a.type = LG_ALERT_RATE_LIMITED;
	strlcpy(a.tenant, tenant, sizeof(a.tenant));
	strlcpy(a.agent, agent ? agent : "", sizeof(a.agent));
	strlcpy(a.what, what, sizeof(a.what));
	(void) push(&a);
}

/* ---- writing (the worker's pass, llm_maintenance) ---- */

/* An amount in a unit as numeric text: money in pico-units, else counts. */
static char *
amount_text(uint8 unit, int64 value)
{
	StringInfoData s;

	initStringInfo(&s);
	if (unit == LG_UNIT_USD || unit == LG_UNIT_CURRENCY)
		lg_append_picousd(&s, Max(value, 0));
	else
		appendStringInfo(&s, INT64_FORMAT, value);
	return s.data;
}

static char *
with_unit(const LgAlertEvent *a, int64 value)
{
	bool money = a->unit == LG_UNIT_USD || a->unit == LG_UNIT_CURRENCY;

	return psprintf("%s %s",
					amount_text(a->unit, value),
					money ? asc_toupper(a->unit_name, strlen(a->unit_name))
						  : a->unit_name);
}

static char *
subject(const LgAlertEvent *a)
{
	return a->agent[0]
			   ? psprintf("Agent \"%s\" of tenant \"%s\"", a->agent, a->tenant)
			   : psprintf("Tenant \"%s\"", a->tenant);
}

static char *
budget_message(const LgAlertEvent *a, double percent)
{
	const char *period = lg_period_name((LgPeriod) a->period);
	char       *used = with_unit(a, a->used);
	char       *limit = with_unit(a, a->limit);
	char       *text;

	if (a->threshold >= LG_THRESHOLD_ONE)
		text = psprintf("%s exceeded its %s budget: %s used of %s (%.1f%%).",
						subject(a),
						period,
						used,
						limit,
						percent);
	else if (a->remaining_style)
		text = psprintf("%s has %g%% of its %s budget left: %s used of %s.",
						subject(a),
						(LG_THRESHOLD_ONE - a->threshold) / 100.0,
						period,
						used,
						limit);
	else
		text = psprintf("%s has used %g%% of its %s budget: %s of %s.",
						subject(a),
						a->threshold / 100.0,
						period,
						used,
						limit);
	if (a->suspend)
		text =
			psprintf("%s The tenant is suspended %s.",
					 text,
					 a->suspended_until == DT_NOEND
						 ? "until an administrator lifts it"
						 : psprintf("until %s",
									timestamptz_to_str(a->suspended_until)));
	return text;
}

static void
persist_suspension(const LgEvent *e)
{
	Oid   types[4] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID};
	Datum v[4];

	v[0] = CStringGetTextDatum(e->alert.tenant);
	v[1] = TimestampTzGetDatum(e->alert.suspended_until);
	v[2] = CStringGetTextDatum(
		psprintf("its %s %s budget was used up",
				 lg_period_name((LgPeriod) e->alert.period),
				 e->alert.unit_name));
	v[3] = TimestampTzGetDatum(e->at);
	if (SPI_execute_plan(lg_spi_prepare_once(&suspend_plan,
											 suspend_sql,
											 4,
											 types),
						 v,
						 NULL,
						 false,
						 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not suspend tenant \"%s\"", e->alert.tenant);
}

static void
set_text(Datum *v, char *n, int i, const char *s)
{
	if (s == NULL || s[0] == '\0')
		n[i] = 'n';
	else
		v[i] = CStringGetTextDatum(s);
}

static void
insert_alert(TimestampTz         at,
			 LgAlertType         type,
			 const LgAlertEvent *a,
			 const char         *provider,
			 const char         *message)
{
	Datum  v[NPARAMS];
	char   n[NPARAMS];
	bool   budget = a != NULL && a->type != LG_ALERT_RATE_LIMITED;
	double percent = budget && a->limit > 0 ? 100.0 * a->used / a->limit : 0;

	memset(n, ' ', sizeof(n));
	v[0] = TimestampTzGetDatum(at);
	v[1] = CStringGetTextDatum(lg_alert_type_name(type));
	set_text(v, n, 2, a ? a->tenant : NULL);
	set_text(v, n, 3, a ? a->agent : NULL);
	v[4] = Int64GetDatum(budget ? a->budget_id : 0);
	n[4] = budget ? ' ' : 'n';
	set_text(v, n, 5, provider);
	set_text(v,
			 n,
			 6,
			 budget ? psprintf("%.4f", a->threshold / 10000.0) : NULL);
	set_text(v, n, 7, budget ? amount_text(a->unit, a->used) : NULL);
	set_text(v, n, 8, budget ? amount_text(a->unit, a->limit) : NULL);
	set_text(v, n, 9, budget ? a->unit_name : NULL);
	set_text(v, n, 10, budget ? psprintf("%.2f", percent) : NULL);
	v[11] = TimestampTzGetDatum(budget ? a->period_start : 0);
	n[11] = budget ? ' ' : 'n';
	v[12] = TimestampTzGetDatum(budget ? a->period_end : 0);
	n[12] = budget ? ' ' : 'n';
	v[13] = CStringGetTextDatum(message);
	set_text(v, n, 14, lg_alert_webhook);
	if (SPI_execute_plan(lg_spi_prepare_once(&insert_plan,
											 insert_sql,
											 NPARAMS,
											 insert_types),
						 v,
						 n,
						 false,
						 0) != SPI_OK_SELECT)
		elog(ERROR, "could not write an alert");
}

/* Write a queued budget or rate-limit alert (SPI connected, owner scope). */
void
lg_alert_write(const LgEvent *e)
{
	const LgAlertEvent *a = &e->alert;
	LgAlertType         type = (LgAlertType) a->type;
	double percent = a->limit > 0 ? 100.0 * a->used / a->limit : 0;

	if (type == LG_ALERT_RATE_LIMITED)
	{
		insert_alert(e->at,
					 type,
					 a,
					 NULL,
					 psprintf("%s hit its rate limit: %s.",
							  subject(a),
							  a->what));
		return;
	}
	insert_alert(e->at, type, a, NULL, budget_message(a, percent));
	if (a->suspend)
		persist_suspension(e);
}

/* The alert a provider status change raises, if any. */
void
lg_alert_write_provider(const LgEvent *e)
{
	if (strcmp(e->to_status, "circuit_open") == 0)
		insert_alert(e->at,
					 LG_ALERT_CIRCUIT_OPEN,
					 NULL,
					 e->provider,
					 psprintf("Provider \"%s\": circuit breaker opened (%s).",
							  e->provider,
							  e->reason));
	else if (strcmp(e->from_status, "circuit_open") == 0)
		insert_alert(e->at,
					 LG_ALERT_CIRCUIT_CLOSED,
					 NULL,
					 e->provider,
					 psprintf("Provider \"%s\": circuit breaker closed, "
							  "status %s (%s).",
							  e->provider,
							  e->to_status,
							  e->reason));
	else if (strcmp(e->to_status, "degraded") == 0)
		insert_alert(e->at,
					 LG_ALERT_PROVIDER_ERROR,
					 NULL,
					 e->provider,
					 psprintf("Provider \"%s\" is degraded (%s).",
							  e->provider,
							  e->reason));
}

/* ---- llm_alert_ack(alert_id bigint) RETURNS boolean ---- */

static const char *const alert_sql =
	"SELECT a.tenant, ARRAY(SELECT m.member::text FROM "
	"llm_gateway.tenant_members m"
	"                        WHERE m.tenant = a.tenant)"
	"  FROM llm_gateway.alerts a WHERE a.id = $1";
static const char *const ack_sql =
	"UPDATE llm_gateway.alerts SET acknowledged_at = now(), acknowledged_by = "
	"$2"
	" WHERE id = $1 AND acknowledged_at IS NULL";
static SPIPlanPtr alert_plan = NULL;
static SPIPlanPtr ack_plan = NULL;

Datum
llm_alert_ack(PG_FUNCTION_ARGS)
{
	Oid          caller = GetUserId();
	bool         admin = lg_caller_is_admin();
	int64        id;
	Oid          types[2] = {INT8OID, TEXTOID};
	Datum        v[2];
	LgOwnerScope scope;
	bool         visible;
	bool         done;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	id = PG_GETARG_INT64(0);
	PreventCommandIfReadOnly("llm_alert_ack()");
	v[0] = Int64GetDatum(id);
	v[1] = CStringGetTextDatum(GetUserNameFromId(caller, false));
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lg_spi_select(lg_spi_prepare_once(&alert_plan, alert_sql, 1, types), v);
	visible =
		SPI_processed == 1 &&
		(admin ||
		 (lg_spi_text(0, 1, CurrentMemoryContext) != NULL &&
		  lg_role_is_member(caller,
							lg_spi_text_list(0, 2, CurrentMemoryContext))));
	if (!visible)
		ereport(ERROR,
				(errcode(ERRCODE_LG_ALERT_NOT_FOUND),
				 errmsg("alert " INT64_FORMAT " does not exist", id),
				 errhint("llm_gateway.alerts lists the alerts of the tenants "
						 "you act for.")));
	if (SPI_execute_plan(lg_spi_prepare_once(&ack_plan, ack_sql, 2, types),
						 v,
						 NULL,
						 false,
						 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not acknowledge alert " INT64_FORMAT, id);
	done = SPI_processed == 1;
	SPI_finish();
	lg_owner_scope_exit(&scope);
	PG_RETURN_BOOL(done);
}
