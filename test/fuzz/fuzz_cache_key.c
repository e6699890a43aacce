/*
 * fuzz_cache_key.c — libFuzzer target for the cache key's canonical form
 * (cache_key.c): two requests decoded from the input must have the same
 * canonical form exactly when they are the same request.  A collision of
 * different requests would serve one tenant's question the answer of
 * another question.
 *
 * Input: two requests one after the other, each a run of fields ended by
 * NUL bytes — scope, model, max_tokens, temperature, top_p (a field that
 * is the single byte 0x01 stands for NULL), then a byte with the number of
 * messages (mod 8), each a role byte and a content, then a byte with the
 * number of stop sequences (mod 5) and the sequences.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "llm_gateway.h"
#include "shim.h"

typedef struct Reader
{
	const char *p;
	const char *end;
} Reader;

static char *
field(Reader *r)
{
	const char *start = r->p;
	char       *s;

	while (r->p < r->end && *r->p != '\0')
		r->p++;
	s = pnstrdup(start, r->p - start);
	if (r->p < r->end)
		r->p++;
	return (s[0] == '\x01' && s[1] == '\0') ? NULL : s;
}

static int
byte(Reader *r)
{
	return r->p < r->end ? (unsigned char) *r->p++ : 0;
}

typedef struct Decoded
{
	char     *scope;
	char     *model;
	char     *max_tokens;
	LgRequest req;
} Decoded;

static void
decode(Reader *r, Decoded *d)
{
	int nstop;

	memset(d, 0, sizeof(*d));
	d->scope = field(r);
	d->model = field(r);
	d->max_tokens = field(r);
	d->req.opt.temperature = field(r);
	d->req.opt.top_p = field(r);
	d->req.nmessages = byte(r) % 8;
	d->req.messages = palloc0(sizeof(LgMessage) * Max(d->req.nmessages, 1));
	for (int i = 0; i < d->req.nmessages; i++)
	{
		d->req.messages[i].role = (LgRole) (byte(r) % 3);
		d->req.messages[i].content = field(r);
		if (d->req.messages[i].content == NULL)
			d->req.messages[i].content = ""; /* content is never NULL */
	}
	nstop = byte(r) % 5;
	for (int i = 0; i < nstop; i++)
	{
		char *s = field(r);

		d->req.opt.stop = lappend(d->req.opt.stop, s ? s : "");
	}
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool
same(const Decoded *a, const Decoded *b)
{
	if (!same_text(a->scope, b->scope) || !same_text(a->model, b->model) ||
		!same_text(a->max_tokens, b->max_tokens) ||
		!same_text(a->req.opt.temperature, b->req.opt.temperature) ||
		!same_text(a->req.opt.top_p, b->req.opt.top_p) ||
		a->req.nmessages != b->req.nmessages ||
		list_length(a->req.opt.stop) != list_length(b->req.opt.stop))
		return false;
	for (int i = 0; i < a->req.nmessages; i++)
		if (a->req.messages[i].role != b->req.messages[i].role ||
			strcmp(a->req.messages[i].content, b->req.messages[i].content) != 0)
			return false;
	for (int i = 0; i < list_length(a->req.opt.stop); i++)
		if (strcmp(list_nth(a->req.opt.stop, i), list_nth(b->req.opt.stop, i)) != 0)
			return false;
	return true;
}

static StringInfo
canonical(const Decoded *d)
{
	StringInfo out = makeStringInfo();

	lg_cache_key_canonical(out, d->scope, &d->req, d->model, d->max_tokens);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Reader     r = {(const char *) data, (const char *) data + size};
	Decoded    a;
	Decoded    b;
	StringInfo ca;
	StringInfo cb;
	bool       equal_forms;

	decode(&r, &a);
	decode(&r, &b);
	ca = canonical(&a);
	cb = canonical(&b);
	equal_forms = ca->len == cb->len && memcmp(ca->data, cb->data, ca->len) == 0;
	if (equal_forms != same(&a, &b))
		abort(); /* two requests share a key, or one request has two */
	shim_reset();
	return 0;
}
