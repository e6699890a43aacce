/*
 * cache_key.c — the response cache's key: SHA-256 over the canonical
 * request.
 *
 * The canonical request is the scope (the tenant, or "*" for tenants that
 * share), the route's target model after alias resolution, every message
 * (role and text), and every option that changes the answer (temperature,
 * max_tokens, top_p, stop).  Options that do not change the answer (labels,
 * metadata, timeouts) are not in it.  Each field is written with its length
 * in front, and the number of messages and of stop sequences too, so no two
 * different requests have the same canonical form: a fuzz target
 * (test/fuzz/fuzz_cache_key.c) checks exactly that.
 */
#include "llm_gateway.h"

#include "lib/stringinfo.h"

#include <openssl/evp.h>

#define KEY_VERSION "llm_gateway cache v2"

static void
put_field(StringInfo out, const char *text)
{
	uint32 n = text ? (uint32) strlen(text) : UINT32_MAX; /* NULL != "" */

	appendBinaryStringInfo(out, (const char *) &n, sizeof(n));
	if (text)
		appendBinaryStringInfo(out, text, n);
}

static void
put_count(StringInfo out, int n)
{
	uint32 v = (uint32) n;

	appendBinaryStringInfo(out, (const char *) &v, sizeof(v));
}

/* The canonical request, appended to out. */
void
lg_cache_key_canonical(StringInfo       out,
					   const char      *scope,
					   const LgRequest *req,
					   const char      *model,
					   const char      *max_tokens)
{
	ListCell *lc;

	put_field(out, KEY_VERSION);
	put_field(out, scope);
	put_field(out, model);
	put_count(out, req->nmessages);
	for (int i = 0; i < req->nmessages; i++)
	{
		put_field(out, lg_role_name(req->messages[i].role));
		put_field(out, req->messages[i].content);
	}
	put_field(out, req->opt.temperature);
	put_field(out, max_tokens);
	put_field(out, req->opt.top_p);
	put_count(out, list_length(req->opt.stop));
	foreach (lc, req->opt.stop)
		put_field(out, (const char *) lfirst(lc));
}

/* SHA-256 of the canonical request; false when OpenSSL fails. */
bool
lg_cache_key_hash(unsigned char    hash[32],
				  const char      *scope,
				  const LgRequest *req,
				  const char      *model,
				  const char      *max_tokens)
{
	StringInfoData canonical;
	EVP_MD_CTX    *ctx;
	bool           ok;

	initStringInfo(&canonical);
	lg_cache_key_canonical(&canonical, scope, req, model, max_tokens);
	/* no PostgreSQL call while ctx lives */
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, canonical.data, canonical.len) == 1 &&
		 EVP_DigestFinal_ex(ctx, hash, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	pfree(canonical.data);
	return ok;
}
