/*
 * json_out.c — writing the jsonb the SQL functions return, as text that
 * jsonb_in reads back.  Every key and string goes through escape_json, so
 * the parse cannot fail; strings stay in the server encoding.
 */
#include "llm_gateway.h"

#include "utils/numeric.h"

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

/*
 * ---- building jsonb directly ----
 *
 * The result of every call is built as a JsonbValue tree, without a text
 * round trip through jsonb_in (whose lexing, number parsing and key
 * sorting were a tenth of a call's own time).  Inside an object each
 * lg_jb_* call with a name adds a key and its value; with name NULL it
 * adds an array element.
 */
static void
jb_push(LgJb *b, const char *name, JsonbValue *v)
{
	if (name != NULL)
	{
		JsonbValue key;

		key.type = jbvString;
		key.val.string.val = (char *) name;
		key.val.string.len = strlen(name);
		(void) pushJsonbValue(&b->state, WJB_KEY, &key);
		(void) pushJsonbValue(&b->state, WJB_VALUE, v);
	}
	else
		(void) pushJsonbValue(&b->state, WJB_ELEM, v);
}

void
lg_jb_begin(LgJb *b, const char *name, bool array)
{
	if (name != NULL)
	{
		JsonbValue key;

		key.type = jbvString;
		key.val.string.val = (char *) name;
		key.val.string.len = strlen(name);
		(void) pushJsonbValue(&b->state, WJB_KEY, &key);
	}
	b->last = pushJsonbValue(&b->state,
							 array ? WJB_BEGIN_ARRAY : WJB_BEGIN_OBJECT,
							 NULL);
}

void
lg_jb_end(LgJb *b, bool array)
{
	b->last = pushJsonbValue(&b->state,
							 array ? WJB_END_ARRAY : WJB_END_OBJECT,
							 NULL);
}

void
lg_jb_str(LgJb *b, const char *name, const char *value)
{
	JsonbValue v;

	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	jb_push(b, name, &v);
}

void
lg_jb_int(LgJb *b, const char *name, int64 value)
{
	JsonbValue v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	jb_push(b, name, &v);
}

void
lg_jb_bool(LgJb *b, const char *name, bool value)
{
	JsonbValue v;

	v.type = jbvBool;
	v.val.boolean = value;
	jb_push(b, name, &v);
}

void
lg_jb_null(LgJb *b, const char *name)
{
	JsonbValue v;

	v.type = jbvNull;
	jb_push(b, name, &v);
}

/* A number given as numeric text (NULL: null). */
void
lg_jb_number(LgJb *b, const char *name, const char *numeric_text)
{
	JsonbValue v;

	if (numeric_text == NULL)
	{
		lg_jb_null(b, name);
		return;
	}
	v.type = jbvNumeric;
	v.val.numeric =
		DatumGetNumeric(DirectFunctionCall3(numeric_in,
											CStringGetDatum(numeric_text),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1)));
	jb_push(b, name, &v);
}

/* A numeric value as it is. */
void
lg_jb_numeric(LgJb *b, const char *name, Numeric value)
{
	JsonbValue v;

	v.type = jbvNumeric;
	v.val.numeric = value;
	jb_push(b, name, &v);
}

Jsonb *
lg_jb_finish(LgJb *b)
{
	return JsonbValueToJsonb(b->last);
}
