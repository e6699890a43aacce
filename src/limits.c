/*
 * limits.c — per-provider limits, circuit breakers and status, in shared
 * memory and exact across all backends.
 *
 * Before each attempt the router asks lg_admit(): under route_lock, the
 * provider's breaker, concurrency, requests and tokens of the last minute
 * are checked and, if all allow it, taken in one step.  A provider at a
 * limit is refused, not waited on: the router moves on.  lg_release() gives
 * the in-flight slot back with the outcome, which moves the breaker:
 *
 *   CLOSED --N consecutive transient failures--> OPEN
 *   OPEN --cool-down passed, at the next admission--> HALF_OPEN
 *   HALF_OPEN --a probe fails--> OPEN;  --M probes succeed--> CLOSED
 *
 * Only transient failures (429, 5xx, 529, timeouts, connection errors)
 * count; client errors and cancels leave the breaker as it is.
 *
 * Admissions still held when an error or the end of the backend cuts an
 * attempt short are released by lg_limits_release_all() (the router's
 * PG_CATCH, and a before_shmem_exit callback), so in-flight counts never
 * leak.
 *
 * Status: the configured one (maintenance, disabled) comes from the table;
 * the runtime one is derived here (circuit_open, degraded, rate_limited,
 * active).  Each change is queued as an event for provider_events, which
 * the worker writes (lg_events_flush).
 */
#include "shmem.h"

#include "storage/ipc.h"
#include "utils/timestamp.h"

#define MAX_HELD 8
#define DEGRADED_ERROR_PCT \
	25 /* errors in the last minute that mean degraded */
#define DEGRADED_MIN_CALLS 5
#define RATE_LIMITED_S     60 /* a 429 keeps the status this long */
#define LATENCY_ALPHA      0.2

static const char *const status_names[] = {"active",
										   "degraded",
										   "rate_limited",
										   "circuit_open"};
static const char *const breaker_names[] = {"closed", "open", "half_open"};

/* Admissions this backend holds right now. */
static LgAdmission *held[MAX_HELD];
static int          nheld = 0;
static bool         exit_callback_registered = false;

const char *
lg_runtime_status_name(int status)
{
	return status_names[status];
}

const char *
lg_breaker_name(int breaker)
{
	return breaker_names[breaker];
}

/* ---- lookups (route_lock held) ---- */

static LgProviderState *
provider_state(const char *name, bool create)
{
	LgProviderKey    key;
	LgProviderState *ps;
	bool             found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	strlcpy(key.name, name, sizeof(key.name));
	ps = hash_search(lg_provider_states,
					 &key,
					 create ? HASH_ENTER_NULL : HASH_FIND,
					 &found);
	if (ps && !found)
	{
		memset((char *) ps + sizeof(key), 0, sizeof(*ps) - sizeof(key));
		ps->status_since = GetCurrentTimestamp();
	}
	return ps;
}

static LgDeploymentState *
deployment_state(const LgDeployment *dep, bool create)
{
	LgDeploymentKey    key;
	LgDeploymentState *ds;
	bool               found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	strlcpy(key.model, dep->model, sizeof(key.model));
	strlcpy(key.provider, dep->provider.name, sizeof(key.provider));
	ds = hash_search(lg_deployment_states,
					 &key,
					 create ? HASH_ENTER_NULL : HASH_FIND,
					 &found);
	if (ds && !found)
		memset((char *) ds + sizeof(key), 0, sizeof(*ds) - sizeof(key));
	return ds;
}

static LgSecond *
bucket(LgProviderState *ps, int64 now_s)
{
	LgSecond *b = &ps->window[now_s % LG_WINDOW_S];

	if (b->second != now_s)
		memset(b, 0, sizeof(*b)), b->second = now_s;
	return b;
}

/* Totals over the last minute. */
static void
window_totals(const LgProviderState *ps,
			  int64                  now_s,
			  int32                 *requests,
			  int32                 *errors,
			  int64                 *tokens,
			  double                *latency_sum)
{
	*requests = *errors = 0;
	*tokens = 0;
	*latency_sum = 0;
	for (int i = 0; i < LG_WINDOW_S; i++)
	{
		const LgSecond *b = &ps->window[i];

		if (b->second > now_s - LG_WINDOW_S && b->second <= now_s)
		{
			*requests += b->requests;
			*errors += b->errors;
			*tokens += b->tokens;
			*latency_sum += b->latency_ms;
		}
	}
}

static int64
unix_seconds(TimestampTz t)
{
	return (int64) (t / USECS_PER_SEC) +
		   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/* ---- status and events (route_lock held) ---- */

static LgRuntimeStatus
compute_status(const LgProviderState *ps, TimestampTz now)
{
	int32  requests;
	int32  errors;
	int64  tokens;
	double latency;
	int64  now_s = unix_seconds(now);

	if (ps->breaker == LG_BREAKER_OPEN)
		return LG_STATUS_CIRCUIT_OPEN;
	if (ps->breaker == LG_BREAKER_HALF_OPEN)
		return LG_STATUS_DEGRADED;
	window_totals(ps, now_s, &requests, &errors, &tokens, &latency);
	if ((ps->rpm > 0 && requests >= ps->rpm) ||
		(ps->tpm > 0 && tokens >= ps->tpm) ||
		(ps->last_rate_limit_at != 0 &&
		 now - ps->last_rate_limit_at < RATE_LIMITED_S * USECS_PER_SEC))
		return LG_STATUS_RATE_LIMITED;
	if (requests >= DEGRADED_MIN_CALLS &&
		errors * 100 >= requests * DEGRADED_ERROR_PCT)
		return LG_STATUS_DEGRADED;
	return LG_STATUS_ACTIVE;
}

static void
push_event(const LgProviderState *ps,
		   const char            *from,
		   const char            *to,
		   const char            *reason)
{
	LgEvent *slot = NULL;

	for (int i = 0; i < LG_MAX_EVENTS && slot == NULL; i++)
		if (lg_shared->events[i].state == LG_EVENT_FREE)
			slot = &lg_shared->events[i];
	if (slot == NULL)
	{
		/* full: the oldest pending event makes room */
		for (int i = 0; i < LG_MAX_EVENTS; i++)
			if (lg_shared->events[i].state == LG_EVENT_PENDING &&
				lg_shared->events[i].kind == LG_EVENT_PROVIDER_STATUS &&
				(slot == NULL || lg_shared->events[i].at < slot->at))
				slot = &lg_shared->events[i];
		if (slot == NULL)
			return;
	}
	memset(slot, 0, sizeof(*slot));
	slot->state = LG_EVENT_PENDING;
	slot->kind = LG_EVENT_PROVIDER_STATUS;
	slot->generation = lg_shared->next_event_generation++;
	slot->dboid = ps->key.dboid;
	slot->at = GetCurrentTimestamp();
	strlcpy(slot->provider, ps->key.name, sizeof(slot->provider));
	strlcpy(slot->from_status, from, sizeof(slot->from_status));
	strlcpy(slot->to_status, to, sizeof(slot->to_status));
	strlcpy(slot->reason, reason, sizeof(slot->reason));
}

/* Publish the status if it changed; returns true when an event was queued. */
static bool
refresh_status(LgProviderState *ps, TimestampTz now, const char *reason)
{
	LgRuntimeStatus status = compute_status(ps, now);

	if (status == ps->status)
		return false;
	push_event(ps, status_names[ps->status], status_names[status], reason);
	ps->status = status;
	ps->status_since = now;
	return true;
}

/* ---- the breaker (route_lock held) ---- */

/* OPEN and cooled down: let probes through. */
static void
breaker_maybe_half_open(LgProviderState  *ps,
						const LgProvider *p,
						TimestampTz       now)
{
	if (ps->breaker == LG_BREAKER_OPEN &&
		now - ps->opened_at >= (int64) p->breaker_cooldown_ms * 1000)
	{
		ps->breaker = LG_BREAKER_HALF_OPEN;
		ps->probes_in_flight = 0;
		ps->probe_successes = 0;
		refresh_status(ps, now, "cool-down over: probing");
	}
}

static void
breaker_open(LgProviderState *ps, TimestampTz now, const char *reason)
{
	ps->breaker = LG_BREAKER_OPEN;
	ps->opened_at = now;
	ps->probes_in_flight = 0;
	ps->probe_successes = 0;
	refresh_status(ps, now, reason);
}

static void
breaker_outcome(LgProviderState  *ps,
				const LgProvider *p,
				bool              probe,
				LgOutcome         outcome,
				TimestampTz       now,
				const char       *error)
{
	char reason[160];

	if (probe)
		ps->probes_in_flight = Max(ps->probes_in_flight - 1, 0);
	if (outcome == LG_OUTCOME_OK)
	{
		ps->consecutive_failures = 0;
		if (probe && ps->breaker == LG_BREAKER_HALF_OPEN &&
			++ps->probe_successes >= p->breaker_successes)
		{
			ps->breaker = LG_BREAKER_CLOSED;
			refresh_status(ps, now, "probes succeeded");
		}
		return;
	}
	if (outcome != LG_OUTCOME_TRANSIENT)
		return;
	ps->consecutive_failures++;
	snprintf(reason,
			 sizeof(reason),
			 "%s",
			 error ? error : "transient failure");
	if (ps->breaker == LG_BREAKER_HALF_OPEN && probe)
		breaker_open(ps, now, psprintf("probe failed: %s", reason));
	else if (ps->breaker == LG_BREAKER_CLOSED &&
			 ps->consecutive_failures >= p->breaker_failures)
		breaker_open(ps,
					 now,
					 psprintf("%d consecutive failures, last: %s",
							  ps->consecutive_failures,
							  reason));
}

/* ---- admission ---- */

static void
release_at_exit(pg_attribute_unused() int   code,
				pg_attribute_unused() Datum arg)
{
	lg_limits_release_all();
}

static void
release_at_abort(XactEvent event, pg_attribute_unused() void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		lg_limits_release_all();
}

static void
track(LgAdmission *adm)
{
	if (!exit_callback_registered)
	{
		before_shmem_exit(release_at_exit, (Datum) 0);
		RegisterXactCallback(release_at_abort, NULL);
		exit_callback_registered = true;
	}
	if (nheld < MAX_HELD)
		held[nheld++] = adm;
}

static void
untrack(LgAdmission *adm)
{
	for (int i = 0; i < nheld; i++)
		if (held[i] == adm)
		{
			held[i] = held[--nheld];
			return;
		}
}

/* Why the provider cannot take one more request now, or NULL. */
static const char *
refusal(LgProviderState *ps, const LgProvider *p, int64 tokens, int64 now_s)
{
	int32  requests;
	int32  errors;
	int64  used_tokens;
	double latency;

	if (ps->breaker == LG_BREAKER_OPEN)
		return "its circuit breaker is open";
	if (ps->breaker == LG_BREAKER_HALF_OPEN &&
		ps->probes_in_flight >= p->breaker_probes)
		return "its circuit breaker is half-open and a probe is in flight";
	if (p->max_concurrency > 0 && ps->in_flight >= p->max_concurrency)
		return "it is at its max_concurrency";
	window_totals(ps, now_s, &requests, &errors, &used_tokens, &latency);
	if (p->rpm > 0 && requests >= p->rpm)
		return "it is at its requests-per-minute limit";
	if (p->tpm > 0 && used_tokens + tokens > p->tpm && used_tokens > 0)
		return "it is at its tokens-per-minute limit";
	return NULL;
}

/*
 * Take a slot of the provider for one attempt, or say why not (*why).
 * tokens is the attempt's worst case (prompt estimate + output cap).
 */
bool
lg_admit(const LgDeployment *dep,
		 int64               tokens,
		 LgAdmission        *adm,
		 const char        **why)
{
	const LgProvider  *p = &dep->provider;
	TimestampTz        now = GetCurrentTimestamp();
	int64              now_s = unix_seconds(now);
	LgProviderState   *ps;
	LgDeploymentState *ds;
	LgSecond          *b;

	memset(adm, 0, sizeof(*adm));
	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	ps = provider_state(p->name, true);
	ds = deployment_state(dep, true);
	if (ps == NULL || ds == NULL)
	{
		LWLockRelease(lg_shared->route_lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many providers or deployments for llm_gateway's "
						"shared memory"),
				 errdetail("It holds %d providers and %d deployments.",
						   LG_MAX_PROVIDERS,
						   LG_MAX_DEPLOYMENTS)));
	}
	ps->rpm = p->rpm;
	ps->tpm = p->tpm;
	ps->cooldown_ms = p->breaker_cooldown_ms;
	breaker_maybe_half_open(ps, p, now);
	*why = refusal(ps, p, tokens, now_s);
	if (*why != NULL)
	{
		if (strstr(*why, "limit"))
			refresh_status(ps, now, *why);
		LWLockRelease(lg_shared->route_lock);
		return false;
	}
	adm->probe = ps->breaker == LG_BREAKER_HALF_OPEN;
	if (adm->probe)
		ps->probes_in_flight++;
	ps->in_flight++;
	ds->in_flight++;
	b = bucket(ps, now_s);
	b->requests++;
	b->tokens += tokens;
	adm->provider = ps;
	adm->deployment = ds;
	adm->tokens = tokens;
	adm->second = now_s;
	adm->held = true;
	LWLockRelease(lg_shared->route_lock);
	track(adm);
	return true;
}

/*
 * Give the slot back with the attempt's outcome: tokens actually used
 * (replacing the estimate), latency, and what the breaker should learn.
 */
void
lg_release(LgAdmission        *adm,
		   const LgDeployment *dep,
		   LgOutcome           outcome,
		   int64               tokens,
		   double              latency_ms,
		   const char         *error)
{
	TimestampTz      now = GetCurrentTimestamp();
	LgProviderState *ps = adm->provider;
	LgSecond        *b;

	if (!adm->held)
		return;
	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	ps->in_flight = Max(ps->in_flight - 1, 0);
	adm->deployment->in_flight = Max(adm->deployment->in_flight - 1, 0);
	b = &ps->window[adm->second % LG_WINDOW_S];
	if (b->second == adm->second && outcome != LG_OUTCOME_CANCELLED)
		b->tokens += tokens - adm->tokens;
	if (outcome == LG_OUTCOME_TRANSIENT || outcome == LG_OUTCOME_FAILED)
	{
		bucket(ps, unix_seconds(now))->errors++;
		if (error)
			strlcpy(ps->last_error, error, sizeof(ps->last_error));
	}
	if (outcome == LG_OUTCOME_OK || outcome == LG_OUTCOME_TRANSIENT ||
		outcome == LG_OUTCOME_FAILED)
	{
		LgDeploymentState *ds = adm->deployment;

		bucket(ps, unix_seconds(now))->latency_ms += latency_ms;
		ds->latency_ewma = ds->has_latency
							   ? LATENCY_ALPHA * latency_ms +
									 (1 - LATENCY_ALPHA) * ds->latency_ewma
							   : latency_ms;
		ds->has_latency = true;
	}
	if (outcome == LG_OUTCOME_TRANSIENT && error && strstr(error, "HTTP 429"))
		ps->last_rate_limit_at = now;
	if (dep != NULL)
		breaker_outcome(ps, &dep->provider, adm->probe, outcome, now, error);
	else if (adm->probe)
		ps->probes_in_flight = Max(ps->probes_in_flight - 1, 0);
	refresh_status(ps, now, error ? error : "recovered");
	LWLockRelease(lg_shared->route_lock);
	adm->held = false;
	untrack(adm);
}

/* Release every admission still held (error and exit paths). */
void
lg_limits_release_all(void)
{
	while (nheld > 0)
		lg_release(held[nheld - 1], NULL, LG_OUTCOME_CANCELLED, 0, 0, NULL);
}

/* ---- what the strategies read ---- */

void
lg_deployment_load(const LgDeployment *dep,
				   int                *in_flight,
				   double             *latency_ms,
				   bool               *has_latency)
{
	LgDeploymentState *ds;

	LWLockAcquire(lg_shared->route_lock, LW_SHARED);
	ds = deployment_state(dep, false);
	*in_flight = ds ? ds->in_flight : 0;
	*has_latency = ds ? ds->has_latency : false;
	*latency_ms = ds ? ds->latency_ewma : 0;
	LWLockRelease(lg_shared->route_lock);
}

/*
 * Smooth weighted round-robin (as nginx does it) over the candidates'
 * shared counters: every deployment gains its weight, the richest is
 * chosen and pays the total.  Over W calls each is chosen in proportion to
 * its weight, interleaved.  Returns the index of the chosen one.
 */
int
lg_weighted_choose(LgDeployment *cands, int n)
{
	LgDeploymentState *states[64];
	int64              total = 0;
	int                best = 0;

	n = Min(n, (int) lengthof(states));
	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		int64 weight =
			(int64) Max(cands[i].weight, 1) * Max(cands[i].provider.weight, 1);

		states[i] = deployment_state(&cands[i], true);
		if (states[i] == NULL)
			continue;
		states[i]->swrr_current += weight;
		total += weight;
		if (states[best] == NULL ||
			states[i]->swrr_current > states[best]->swrr_current)
			best = i;
	}
	if (states[best] != NULL)
		states[best]->swrr_current -= total;
	LWLockRelease(lg_shared->route_lock);
	return best;
}

/* ---- what the status functions read ---- */

bool
lg_provider_snapshot(const char *name, LgProviderSnapshot *out)
{
	LgProviderState *ps;
	TimestampTz      now = GetCurrentTimestamp();
	double           latency_sum;

	memset(out, 0, sizeof(*out));
	LWLockAcquire(lg_shared->route_lock, LW_SHARED);
	ps = provider_state(name, false);
	if (ps == NULL)
	{
		LWLockRelease(lg_shared->route_lock);
		return false;
	}
	out->status = compute_status(ps, now);
	out->breaker = ps->breaker;
	if (ps->breaker == LG_BREAKER_OPEN &&
		now - ps->opened_at >= (int64) ps->cooldown_ms * 1000)
		out->breaker_ready = true;
	out->in_flight = ps->in_flight;
	out->consecutive_failures = ps->consecutive_failures;
	out->status_since = ps->status_since;
	window_totals(ps,
				  unix_seconds(now),
				  &out->requests,
				  &out->errors,
				  &out->tokens,
				  &latency_sum);
	out->avg_latency_ms = out->requests > 0 ? latency_sum / out->requests : 0;
	strlcpy(out->last_error, ps->last_error, sizeof(out->last_error));
	LWLockRelease(lg_shared->route_lock);
	return true;
}

/* Re-derive every provider's status (time moves statuses on by itself). */
void
lg_limits_refresh_statuses(void)
{
	HASH_SEQ_STATUS  seq;
	LgProviderState *ps;
	TimestampTz      now = GetCurrentTimestamp();

	LWLockAcquire(lg_shared->route_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, lg_provider_states);
	while ((ps = hash_seq_search(&seq)) != NULL)
		if (ps->key.dboid == MyDatabaseId)
			refresh_status(ps, now, "no longer observed");
	LWLockRelease(lg_shared->route_lock);
}
