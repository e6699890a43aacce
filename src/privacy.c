/*
 * privacy.c — what the ledger keeps of a call's content.
 *
 * Each tenant chooses (tenants.privacy): "text" keeps the prompt and the
 * answer in llm_gateway.usage_content besides their digests, "hash" (the
 * default) only SHA-256 digests on the ledger row, "none" nothing.  A call
 * may lower it with its "privacy" option, never raise it.  Under "none" the
 * response cache is not used either: it would keep the answer's text.
 *
 * The digests are over UTF-8, so they can be recomputed in SQL in any
 * database encoding: prompt_sha256 = sha256(convert_to(messages::text,
 * 'UTF8')), response_sha256 = sha256(convert_to(answer, 'UTF8')).
 *
 * The texts are written in the caller's transaction, as the owner of schema
 * llm_gateway: they cannot ride in a fixed-size spend slot, and a call whose
 * transaction rolls back has no answer to keep.  Its ledger row (written by
 * the worker) still has the digests.
 */
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

static const char *const store_sql =
	"INSERT INTO llm_gateway.usage_content"
	" (usage_id, created_at, tenant, prompt, response)"
	" VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

static SPIPlanPtr store_plan = NULL;

/* SHA-256 of s (len bytes, server encoding) as UTF-8. */
static void
sha256_utf8(const char *s, size_t len, uint8 out[32])
{
	char              *utf8 = pg_server_to_any(s, (int) len, PG_UTF8);
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) utf8, strlen(utf8)) < 0 ||
		pg_cryptohash_final(ctx, out, 32) < 0)
		elog(ERROR,
			 "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	if (utf8 != s)
		pfree(utf8);
}

/*
 * Settle what this call keeps: its privacy, and the prompt's digest (once,
 * for every attempt's row).
 */
void
lg_privacy_prepare(LgCall *call, Jsonb *messages)
{
	LgPrivacy privacy = call->tenant->privacy;
	char     *text;

	if (call->req->opt.privacy != LG_PRIVACY_UNSET &&
		call->req->opt.privacy > (int) privacy)
		privacy = (LgPrivacy) call->req->opt.privacy;
	call->privacy = privacy;
	call->has_prompt_sha256 = false;
	call->messages = privacy == LG_PRIVACY_TEXT ? messages : NULL;
	if (privacy == LG_PRIVACY_NONE)
		return;
	text = JsonbToCString(NULL, &messages->root, VARSIZE(messages));
	sha256_utf8(text, strlen(text), call->prompt_sha256);
	call->has_prompt_sha256 = true;
	pfree(text);
}

/* The digests of one ledger row: the call's prompt, the attempt's answer. */
void
lg_privacy_fill(LgSpendEntry *e, const LgCall *call, const LgAttempt *a)
{
	e->has_prompt_sha256 = call->has_prompt_sha256;
	if (call->has_prompt_sha256)
		memcpy(e->prompt_sha256, call->prompt_sha256, 32);
	e->has_response_sha256 = false;
	if (call->privacy == LG_PRIVACY_NONE || a == NULL ||
		a->status != LG_ATTEMPT_OK || a->reply.content == NULL)
		return;
	sha256_utf8(a->reply.content,
				strlen(a->reply.content),
				e->response_sha256);
	e->has_response_sha256 = true;
}

/* Under privacy "text": keep the answered call's prompt and answer. */
void
lg_privacy_store(const LgCall *call, const LgAttempt *final)
{
	Oid   types[5] = {INT8OID, TIMESTAMPTZOID, TEXTOID, JSONBOID, TEXTOID};
	Datum v[5];
	char  nulls[6] = "     ";
	LgOwnerScope scope;

	if (call->privacy != LG_PRIVACY_TEXT || final->usage_id == 0)
		return;
	v[0] = Int64GetDatum(final->usage_id);
	v[1] = TimestampTzGetDatum(final->started_at != 0 ? final->started_at
													  : GetCurrentTimestamp());
	v[2] = CStringGetTextDatum(call->tenant->tenant);
	v[3] = JsonbPGetDatum(call->messages);
	if (final->reply.content != NULL)
		v[4] = CStringGetTextDatum(final->reply.content);
	else
		nulls[4] = 'n';
	lg_owner_scope_enter(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(lg_spi_prepare_once(&store_plan, store_sql, 5, types),
						 v,
						 nulls,
						 false,
						 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the texts of a call");
	SPI_finish();
	lg_owner_scope_exit(&scope);
}
