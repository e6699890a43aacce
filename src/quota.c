/*
 * quota.c — requests and tokens per minute and concurrent calls, per tenant
 * and per agent, exact across all backends.
 *
 * One LgQuotaState per (database, tenant, agent) that has such a limit: a
 * sliding window of the last LG_WINDOW_S one-second buckets and the number
 * of its calls in flight.  A call is counted at admission with its token
 * estimate; at its end the bucket it went into is corrected to the tokens it
 * really used (if the bucket is still in the window).  The daily quotas
 * (rpd, tpd) are budgets, see account_catalog.c.
 *
 * Everything here runs with LgShared.account_lock held (account.c).
 */
#include "account.h"
#include "shmem.h"

#include "storage/shmem.h"

typedef struct LgQuotaKey
{
	Oid  dboid;
	char tenant[LG_LABEL_MAX];
	char agent[LG_LABEL_MAX];
} LgQuotaKey;

typedef struct LgQuotaBucket
{
	int64 second;
	int32 requests;
	int64 tokens;
} LgQuotaBucket;

typedef struct LgQuotaState
{
	LgQuotaKey    key;
	int32         in_flight;
	LgQuotaBucket window[LG_WINDOW_S];
	TimestampTz   last_alert_at;
} LgQuotaState;

static HTAB *quota_states = NULL;

static long
max_states(void)
{
	return (long) lg_max_tenants * 2;
}

Size
lg_quota_shmem_size(void)
{
	return hash_estimate_size(max_states(), sizeof(LgQuotaState));
}

void
lg_quota_shmem_attach(void)
{
	HASHCTL info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LgQuotaKey);
	info.entrysize = sizeof(LgQuotaState);
	quota_states = ShmemInitHash("llm_gateway quotas",
								 max_states(),
								 max_states(),
								 &info,
								 HASH_ELEM | HASH_BLOBS);
}

static int64
now_seconds(void)
{
	return (
		int64) ((GetCurrentTimestamp() / USECS_PER_SEC) +
				((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY));
}

/* The state of a tenant's or agent's window; NULL when memory is full. */
static LgQuotaState *
state(const LgRateQuota *q, const char *tenant)
{
	LgQuotaKey    key;
	LgQuotaState *s;
	bool          found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	strlcpy(key.tenant, tenant, sizeof(key.tenant));
	strlcpy(key.agent, q->agent ? q->agent : "", sizeof(key.agent));
	s = hash_search(quota_states, &key, HASH_ENTER_NULL, &found);
	if (s != NULL && !found)
		memset((char *) s + sizeof(LgQuotaKey),
			   0,
			   sizeof(LgQuotaState) - sizeof(LgQuotaKey));
	return s;
}

static LgQuotaBucket *
bucket(LgQuotaState *s, int64 now_s)
{
	LgQuotaBucket *b = &s->window[now_s % LG_WINDOW_S];

	if (b->second != now_s)
	{
		b->second = now_s;
		b->requests = 0;
		b->tokens = 0;
	}
	return b;
}

static bool
in_window(const LgQuotaBucket *b, int64 now_s)
{
	return b->second > now_s - LG_WINDOW_S && b->second <= now_s;
}

/*
 * Seconds until the window frees "needed" more of requests (tokens when
 * by_tokens), counting from its oldest bucket.
 */
static int
seconds_until_free(const LgQuotaState *s,
				   int64               now_s,
				   int64               excess,
				   bool                by_tokens)
{
	int64 freed = 0;

	for (int64 sec = now_s - LG_WINDOW_S + 1; sec <= now_s; sec++)
	{
		const LgQuotaBucket *b = &s->window[sec % LG_WINDOW_S];

		if (b->second != sec)
			continue;
		freed += by_tokens ? b->tokens : b->requests;
		if (freed >= excess)
			return (int) (sec + LG_WINDOW_S - now_s);
	}
	return LG_WINDOW_S;
}

/*
 * Why the tenant or agent cannot start one more call of "tokens" estimated
 * tokens now (and in how many seconds to retry, -1: never), or
 * LG_QUOTA_OK.  No memory is allocated: the lock is held.
 */
LgQuotaRefusal
lg_quota_refusal(LgRateQuota *q,
				 const char  *tenant,
				 int64        tokens,
				 int         *retry_after_s)
{
	LgQuotaState *s = state(q, tenant);
	int64         now_s = now_seconds();
	int64         requests = 0;
	int64         used = 0;

	*retry_after_s = 1;
	if (s == NULL)
		return LG_QUOTA_MEMORY_FULL;
	if (q->max_concurrency > 0 && s->in_flight >= q->max_concurrency)
		return LG_QUOTA_CONCURRENCY;
	for (int i = 0; i < LG_WINDOW_S; i++)
		if (in_window(&s->window[i], now_s))
		{
			requests += s->window[i].requests;
			used += s->window[i].tokens;
		}
	if (q->rpm > 0 && requests + 1 > q->rpm)
	{
		*retry_after_s =
			seconds_until_free(s, now_s, requests + 1 - q->rpm, false);
		return LG_QUOTA_RPM;
	}
	if (q->tpm > 0 && tokens > q->tpm)
	{
		*retry_after_s = -1;
		return LG_QUOTA_TPM;
	}
	if (q->tpm > 0 && used + tokens > q->tpm)
	{
		*retry_after_s =
			seconds_until_free(s, now_s, used + tokens - q->tpm, true);
		return LG_QUOTA_TPM;
	}
	return LG_QUOTA_OK;
}

/* The limit a refusal names, for messages and alerts. */
char *
lg_quota_describe(const LgRateQuota *q, LgQuotaRefusal why, int64 tokens)
{
	switch (why)
	{
		case LG_QUOTA_CONCURRENCY:
			return psprintf("%d concurrent calls", q->max_concurrency);
		case LG_QUOTA_RPM:
			return psprintf("%d requests per minute", q->rpm);
		case LG_QUOTA_TPM:
			return tokens > q->tpm
					   ? psprintf("%d tokens per minute, and this call may "
								  "use up to " INT64_FORMAT,
								  q->tpm,
								  tokens)
					   : psprintf("%d tokens per minute", q->tpm);
		case LG_QUOTA_MEMORY_FULL:
			return pstrdup("the gateway is tracking too many tenants "
						   "(raise llm_gateway.max_tenants)");
		default:
			return NULL;
	}
}

/* Count the call in: one request, its estimated tokens, one in flight. */
void
lg_quota_take(LgRateQuota *q, const char *tenant, int64 tokens)
{
	LgQuotaState  *s = state(q, tenant);
	int64          now_s = now_seconds();
	LgQuotaBucket *b;

	if (s == NULL)
		return;
	b = bucket(s, now_s);
	b->requests++;
	b->tokens += tokens;
	s->in_flight++;
	q->second = now_s;
	q->tokens = tokens;
	q->held = true;
}

/* The call is over: one less in flight, its bucket set to the real tokens. */
void
lg_quota_give_back(LgRateQuota *q, const char *tenant, int64 tokens_used)
{
	LgQuotaState  *s;
	LgQuotaBucket *b;

	if (!q->held || (s = state(q, tenant)) == NULL)
		return;
	q->held = false;
	s->in_flight = Max(s->in_flight - 1, 0);
	b = &s->window[q->second % LG_WINDOW_S];
	if (b->second == q->second)
		b->tokens = Max(b->tokens + tokens_used - q->tokens, 0);
}

/* At most one rate_limited alert per tenant or agent and interval. */
bool
lg_quota_alert_due(const LgRateQuota *q, const char *tenant)
{
	LgQuotaState *s = state(q, tenant);
	TimestampTz   now = GetCurrentTimestamp();

	if (s == NULL || (s->last_alert_at != 0 &&
					  now - s->last_alert_at <
						  (int64) lg_rate_alert_interval_s * USECS_PER_SEC))
		return false;
	s->last_alert_at = now;
	return true;
}
