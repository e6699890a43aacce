/*
 * json_extract.c — pull a few scalar fields out of a provider's JSON reply.
 *
 * Provider responses are parsed with PostgreSQL's incremental JSON parser
 * (common/jsonapi.h) and a path-tracking semantic action, rather than by
 * converting to jsonb: the parser reports syntax errors as return codes, so a
 * malformed reply becomes our own SQLSTATE instead of an error thrown from
 * deep inside jsonb_in, and only the wanted fields are copied.
 *
 * A path is dotted ("usage.prompt_tokens"); array elements are numbered from
 * 0 and "*" matches any element ("content.*.text").  A field marked concat
 * collects every match, in document order, into one string.
 */
#include "http.h"

#include "common/jsonapi.h"

#define MAX_DEPTH 32

typedef struct ExtractState
{
	LgJsonField   *fields;
	int            nfields;
	StringInfoData path;
	int            depth;                  /* number of components in path */
	int            offsets[MAX_DEPTH + 1]; /* path.len before each component */
	int            overflow;               /* levels deeper than MAX_DEPTH */
	int            array_index[MAX_DEPTH + 1]; /* next index per array level */
} ExtractState;

static void
push_component(ExtractState *st, const char *name)
{
	if (st->depth >= MAX_DEPTH)
	{
		st->overflow++;
		return;
	}
	st->offsets[st->depth] = st->path.len;
	if (st->depth > 0)
		appendStringInfoChar(&st->path, '.');
	appendStringInfoString(&st->path, name);
	st->depth++;
}

static void
pop_component(ExtractState *st)
{
	if (st->overflow > 0)
	{
		st->overflow--;
		return;
	}
	st->depth--;
	st->path.len = st->offsets[st->depth];
	st->path.data[st->path.len] = '\0';
}

/* Does the concrete path match the pattern, "*" matching one component? */
static bool
path_matches(const char *pattern, const char *path)
{
	while (*pattern && *path)
	{
		if (pattern[0] == '*' && (pattern[1] == '.' || pattern[1] == '\0'))
		{
			pattern++;
			while (*path && *path != '.')
				path++;
		}
		else
		{
			while (*pattern && *pattern != '.' && *pattern == *path)
				pattern++, path++;
			if ((*pattern != '.' && *pattern != '\0') ||
				(*path != '.' && *path != '\0'))
				return false;
		}
		if (*pattern != *path)
			return false;
		if (*pattern == '.')
			pattern++, path++;
	}
	return *pattern == '\0' && *path == '\0';
}

static void
on_object_field_start(void                      *state,
					  char                      *fname,
					  pg_attribute_unused() bool isnull)
{
	push_component((ExtractState *) state, fname);
}

static void
on_object_field_end(void                       *state,
					pg_attribute_unused() char *fname,
					pg_attribute_unused() bool  isnull)
{
	pop_component((ExtractState *) state);
}

static void
on_array_start(void *state)
{
	ExtractState *st = (ExtractState *) state;

	if (st->depth <= MAX_DEPTH)
		st->array_index[st->depth] = 0;
}

static void
on_array_element_start(void *state, pg_attribute_unused() bool isnull)
{
	ExtractState *st = (ExtractState *) state;
	char          index[16];
	int           level = st->depth;

	snprintf(index,
			 sizeof(index),
			 "%d",
			 level <= MAX_DEPTH ? st->array_index[level]++ : 0);
	push_component(st, index);
}

static void
on_array_element_end(void *state, pg_attribute_unused() bool isnull)
{
	pop_component((ExtractState *) state);
}

static void
on_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ExtractState *st = (ExtractState *) state;

	if (st->overflow > 0)
		return;
	for (int i = 0; i < st->nfields; i++)
	{
		LgJsonField *f = &st->fields[i];

		if ((f->found && !f->concat) || !path_matches(f->path, st->path.data))
			continue;
		if (tokentype == JSON_TOKEN_NULL)
		{
			if (!f->found)
				f->is_null = true;
			continue;
		}
		f->found = true;
		f->is_null = false;
		f->is_number = (tokentype == JSON_TOKEN_NUMBER);
		appendStringInfoString(&f->value, token);
	}
}

/*
 * Returns false with *why set when the text is not valid UTF-8 JSON.  A field
 * that is absent has found = false; one that is null has is_null = true.
 */
bool
lg_json_extract(
	const char *json, size_t len, LgJsonField *fields, int nfields, char **why)
{
	ExtractState       st;
	JsonSemAction      sem;
	JsonLexContext    *lex;
	JsonParseErrorType rc;

	for (int i = 0; i < nfields; i++)
	{
		fields[i].found = fields[i].is_null = fields[i].is_number = false;
		initStringInfo(&fields[i].value);
	}
	if (len > (size_t) PG_INT32_MAX)
	{
		*why = pstrdup("the response is too large to parse");
		return false;
	}
	if (!pg_verify_mbstr(PG_UTF8, json, (int) len, true))
	{
		*why = pstrdup("the response is not valid UTF-8");
		return false;
	}

	memset(&st, 0, sizeof(st));
	st.fields = fields;
	st.nfields = nfields;
	initStringInfo(&st.path);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_field_start = on_object_field_start;
	sem.object_field_end = on_object_field_end;
	sem.array_start = on_array_start;
	sem.array_element_start = on_array_element_start;
	sem.array_element_end = on_array_element_end;
	sem.scalar = on_scalar;

	lex =
		makeJsonLexContextCstringLen((char *) json, (int) len, PG_UTF8, true);
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		*why = psprintf("the response is not valid JSON: %s",
						json_errdetail(rc, lex));
		return false;
	}
	return true;
}
