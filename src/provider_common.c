/*
 * provider_common.c — what the protocol files share: writing JSON from
 * server text, reading the fields a reply parse found, a conversation as
 * alternating turns, the options every protocol knows, the request headers
 * and an error body's message and code.
 *
 * Kept apart from provider.c (the HTTP exchange and its outcome) so that
 * the reply parsers can be built outside the server, with this file and
 * json_extract.c, for the fuzz targets (test/fuzz).
 */
#include "provider.h"

static const char *const role_names[] = {"system", "user", "assistant"};

const char *
lg_role_name(LgRole role)
{
	return role_names[role];
}

/* The role named by the len bytes at s; false when there is none. */
bool
lg_role_parse(const char *s, int len, LgRole *role)
{
	for (int r = 0; r < (int) lengthof(role_names); r++)
		if ((int) strlen(role_names[r]) == len &&
			strncmp(role_names[r], s, len) == 0)
		{
			*role = (LgRole) r;
			return true;
		}
	return false;
}

/* ---- JSON writing ---- */

void
lg_json_append_string(StringInfo buf, const char *server_text)
{
	char *utf8 = pg_server_to_any(server_text, strlen(server_text), PG_UTF8);

	escape_json(buf, utf8);
	if (utf8 != server_text)
		pfree(utf8);
}

void
lg_json_append_key(StringInfo buf, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoChar(buf, ',');
	*first = false;
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

/* ---- helpers for the protocol files ---- */

/* A path segment of a URL (deployment or model name): unreserved bytes only. */
char *
lg_url_path_segment(const char *s)
{
	StringInfoData out;

	initStringInfo(&out);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			appendStringInfoChar(&out, *p);
		else
			appendStringInfo(&out, "%%%02X", *p);
	}
	return out.data;
}

/* A token count from a reply: a non-negative integer, clamped to int32. */
int64
lg_json_count(const LgJsonField *f)
{
	long long n;

	if (!f->found || !f->is_number)
		return 0;
	n = strtoll(f->value.data, NULL, 10);
	return n < 0 ? 0 : Min(n, (long long) PG_INT32_MAX);
}

/* A string from a reply, in the server encoding; NULL when absent or null. */
char *
lg_json_server_string(const LgJsonField *f)
{
	if (!f->found || f->is_null)
		return NULL;
	return pg_any_to_server(f->value.data, f->value.len, PG_UTF8);
}

/*
 * Anthropic and Gemini take the system text apart from the conversation and
 * want user and assistant turns to alternate: join every system message
 * (in order, blank-line separated) and merge runs of one role the same way.
 */
int
lg_conversation_turns(const LgRequest *req, char **system_text, LgTurn **turns)
{
	StringInfoData system;
	int            n = 0;

	initStringInfo(&system);
	*turns = palloc0(sizeof(LgTurn) * req->nmessages);
	for (int i = 0; i < req->nmessages; i++)
	{
		const LgMessage *m = &req->messages[i];
		StringInfo       target;

		if (m->role == LG_ROLE_SYSTEM)
			target = &system;
		else if (n > 0 && (*turns)[n - 1].role == m->role)
			target = &(*turns)[n - 1].text;
		else
		{
			(*turns)[n].role = m->role;
			initStringInfo(&(*turns)[n].text);
			target = &(*turns)[n++].text;
		}
		if (target->len > 0)
			appendStringInfoString(target, "\n\n");
		appendStringInfoString(target, m->content);
	}
	*system_text = system.len > 0 ? system.data : NULL;
	return n;
}

/*
 * The sampling options, under the names of the protocol at hand; a NULL
 * name leaves that option out (Anthropic sends max_tokens on its own).
 * Numbers are sent exactly as the caller wrote them.
 */
void
lg_json_append_options(StringInfo           b,
					   bool                *first,
					   const LgRequest     *req,
					   const LgOptionNames *names)
{
	ListCell *lc;

	if (req->opt.temperature && names->temperature)
	{
		lg_json_append_key(b, first, names->temperature);
		appendStringInfoString(b, req->opt.temperature);
	}
	if (req->opt.max_tokens > 0 && names->max_tokens)
	{
		lg_json_append_key(b, first, names->max_tokens);
		appendStringInfo(b, "%d", req->opt.max_tokens);
	}
	if (req->opt.top_p && names->top_p)
	{
		lg_json_append_key(b, first, names->top_p);
		appendStringInfoString(b, req->opt.top_p);
	}
	if (req->opt.stop != NIL && names->stop)
	{
		lg_json_append_key(b, first, names->stop);
		appendStringInfoChar(b, '[');
		foreach (lc, req->opt.stop)
		{
			if (foreach_current_index (lc) > 0)
				appendStringInfoChar(b, ',');
			lg_json_append_string(b, (const char *) lfirst(lc));
		}
		appendStringInfoChar(b, ']');
	}
}

/*
 * Content-Type and Accept, the protocol's own fixed header (or NULL), and
 * copies of the provider's extra headers: the request's header lines are
 * wiped after the exchange, the provider's must survive it.
 */
List *
lg_request_headers(const LgDeployment *dep, const char *protocol_header)
{
	List     *headers = list_make2(pstrdup("Content-Type: application/json"),
                               pstrdup("Accept: application/json"));
	ListCell *lc;

	if (protocol_header)
		headers = lappend(headers, pstrdup(protocol_header));
	foreach (lc, dep->provider.headers)
		headers = lappend(headers, pstrdup((const char *) lfirst(lc)));
	return headers;
}

/* An error body's message and code, found at the protocol's paths. */
void
lg_parse_error_fields(const char      *body,
					  size_t           len,
					  LgProviderError *err,
					  const char      *message_path,
					  const char      *code_path,
					  const char      *fallback_code_path)
{
	LgJsonField f[3] = {
		{.path = message_path},
		{.path = code_path},
		{.path = fallback_code_path ? fallback_code_path : code_path},
	};
	char *why;

	if (!lg_json_extract(body, len, f, 3, &why))
		return;
	if (f[0].found)
		err->message = f[0].value.data;
	if (f[1].found)
		err->code = f[1].value.data;
	else if (f[2].found)
		err->code = f[2].value.data;
}
