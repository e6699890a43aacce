/*
 * shim.c — the few server facilities the fuzzed code needs, outside the
 * server (make fuzz).
 *
 * The reply parsers (provider_openai.c, provider_anthropic.c,
 * provider_gemini.c, provider_common.c, json_extract.c) and the cache key
 * (cache_key.c) are compiled unchanged, against the server's headers, and
 * linked with PostgreSQL's own frontend JSON parser and string buffers
 * (libpgcommon, libpgport).  What remains is here: palloc as an arena freed
 * after each input, ereport(ERROR) as a longjmp back to the target, lists,
 * escape_json, and encoding checks for a UTF-8 database.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "common/jsonapi.h"
#include "utils/json.h"

#include "shim.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- memory: every allocation of one input, freed together ---- */

typedef struct Chunk
{
	struct Chunk *next;
	struct Chunk *prev;
	size_t        size;
	max_align_t   data[];
} Chunk;

static Chunk arena = {&arena, &arena, 0};

static Chunk *
chunk_of(void *p)
{
	return (Chunk *) ((char *) p - offsetof(Chunk, data));
}

void *
palloc(Size size)
{
	Chunk *c = malloc(sizeof(Chunk) + size);

	if (c == NULL)
		abort();
	c->size = size;
	c->next = arena.next;
	c->prev = &arena;
	arena.next->prev = c;
	arena.next = c;
	return c->data;
}

void *
palloc0(Size size)
{
	return memset(palloc(size), 0, size);
}

void *
palloc_extended(Size size, int flags)
{
	return (flags & MCXT_ALLOC_ZERO) ? palloc0(size) : palloc(size);
}

void
pfree(void *p)
{
	Chunk *c = chunk_of(p);

	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

void *
repalloc(void *p, Size size)
{
	void *q = palloc(size);
	Size  old = chunk_of(p)->size;

	memcpy(q, p, Min(old, size));
	pfree(p);
	return q;
}

char *
pstrdup(const char *s)
{
	return strcpy(palloc(strlen(s) + 1), s);
}

char *
pnstrdup(const char *s, Size len)
{
	char *p;

	len = strnlen(s, len);
	p = palloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
shim_reset(void)
{
	while (arena.next != &arena)
		pfree(arena.next->data);
}

/* ---- errors: ERROR and above jump back to the target ---- */

sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;
static int error_level;

bool
errstart(int elevel, const char *domain)
{
	(void) domain;
	error_level = elevel;
	return elevel >= ERROR; /* notices and logs are dropped */
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	(void) filename;
	(void) lineno;
	(void) funcname;
	if (error_level >= ERROR)
	{
		if (PG_exception_stack == NULL)
			abort();
		siglongjmp(*PG_exception_stack, 1);
	}
}

int
errcode(int sqlerrcode)
{
	(void) sqlerrcode;
	return 0;
}

/* The text is formatted, so a bad format or argument shows under ASan. */
#define FORMAT_AND_DROP(fmt)                       \
	do                                             \
	{                                              \
		char    buf_[1024];                        \
		va_list ap_;                               \
		va_start(ap_, fmt);                        \
		pg_vsnprintf(buf_, sizeof(buf_), fmt, ap_); \
		va_end(ap_);                               \
	} while (0)

int
errmsg(const char *fmt, ...)
{
	FORMAT_AND_DROP(fmt);
	return 0;
}

int
errmsg_internal(const char *fmt, ...)
{
	FORMAT_AND_DROP(fmt);
	return 0;
}

int
errdetail(const char *fmt, ...)
{
	FORMAT_AND_DROP(fmt);
	return 0;
}

int
errhint(const char *fmt, ...)
{
	FORMAT_AND_DROP(fmt);
	return 0;
}

/* ---- lists (the PostgreSQL 15 layout, cells in their own array) ---- */

static List *
new_list(int n)
{
	List *l = palloc(offsetof(List, initial_elements));

	l->type = T_List;
	l->length = n;
	l->max_length = Max(n, 4);
	l->elements = palloc(sizeof(ListCell) * l->max_length);
	return l;
}

List *
lappend(List *list, void *datum)
{
	if (list == NIL)
		list = new_list(0);
	if (list->length == list->max_length)
	{
		list->max_length *= 2;
		list->elements =
			repalloc(list->elements, sizeof(ListCell) * list->max_length);
	}
	list->elements[list->length++].ptr_value = datum;
	return list;
}

List *
list_make1_impl(NodeTag t, ListCell datum1)
{
	List *l = new_list(1);

	l->type = t;
	l->elements[0] = datum1;
	return l;
}

List *
list_make2_impl(NodeTag t, ListCell datum1, ListCell datum2)
{
	List *l = new_list(2);

	l->type = t;
	l->elements[0] = datum1;
	l->elements[1] = datum2;
	return l;
}

/* ---- text: a UTF-8 database ---- */

int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

bool
pg_verify_mbstr(int encoding, const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(encoding, mbstr, len) == len)
		return true;
	if (!noError)
		ereport(ERROR, (errmsg("invalid byte sequence")));
	return false;
}

char *
pg_any_to_server(const char *s, int len, int encoding)
{
	(void) encoding;
	pg_verify_mbstr(PG_UTF8, s, len, false);
	return unconstify(char *, s);
}

char *
pg_server_to_any(const char *s, int len, int encoding)
{
	(void) len;
	(void) encoding;
	return unconstify(char *, s);
}

/* JSON string escaping, as the server's escape_json writes it. */
void
escape_json(StringInfo buf, const char *str)
{
	appendStringInfoCharMacro(buf, '"');
	for (const char *p = str; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		switch (c)
		{
			case '\b': appendStringInfoString(buf, "\\b"); break;
			case '\f': appendStringInfoString(buf, "\\f"); break;
			case '\n': appendStringInfoString(buf, "\\n"); break;
			case '\r': appendStringInfoString(buf, "\\r"); break;
			case '\t': appendStringInfoString(buf, "\\t"); break;
			case '"': appendStringInfoString(buf, "\\\""); break;
			case '\\': appendStringInfoString(buf, "\\\\"); break;
			default:
				if (c < ' ')
					appendStringInfo(buf, "\\u%04x", c);
				else
					appendStringInfoCharMacro(buf, c);
		}
	}
	appendStringInfoCharMacro(buf, '"');
}

/* The server's JSON error text; the frontend library has none. */
char *
json_errdetail(JsonParseErrorType error, JsonLexContext *lex)
{
	(void) lex;
	return psprintf("JSON parse error %d", (int) error);
}
