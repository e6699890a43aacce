/*
 * json_out.c — writing the jsonb the SQL functions return, as text that
 * jsonb_in reads back.  Every key and string goes through escape_json, so
 * the parse cannot fail; strings stay in the server encoding.
 */
#include "llm_gateway.h"

void
lg_jkey(StringInfo b, bool *first, const char *name)
{
	if (!*first)
		appendStringInfoChar(b, ',');
	*first = false;
	escape_json(b, name);
	appendStringInfoChar(b, ':');
}

void
lg_jstr(StringInfo b, bool *first, const char *name, const char *value)
{
	lg_jkey(b, first, name);
	if (value)
		escape_json(b, value);
	else
		appendStringInfoString(b, "null");
}

void
lg_jint(StringInfo b, bool *first, const char *name, int64 value)
{
	lg_jkey(b, first, name);
	appendStringInfo(b, INT64_FORMAT, value);
}

void
lg_jbool(StringInfo b, bool *first, const char *name, bool value)
{
	lg_jkey(b, first, name);
	appendStringInfoString(b, value ? "true" : "false");
}

Jsonb *
lg_jfinish(StringInfo b)
{
	return DatumGetJsonbP(
		DirectFunctionCall1(jsonb_in, CStringGetDatum(b->data)));
}
