/*
 * request.c — validate the arguments of llm_complete() into an LgRequest.
 *
 * Everything a provider would reject is refused here first, before any
 * budget is touched or any byte leaves the server, with a message that names
 * the offending element (messages[2].role) and says what is accepted.
 * Unknown keys are errors, not silently dropped: a misspelt "max_token"
 * must not turn into an unbounded answer.
 */
#include "llm_gateway.h"

#include <math.h>

#include "parser/scansup.h"
#include "utils/numeric.h"

#define MAX_LABEL_LEN      256
#define MAX_STOP_SEQUENCES 4
#define MAX_STOP_BYTES     1024

typedef void (*FieldFn)(const char *key, JsonbValue *value, void *arg);

static const char *
jbv_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array"
															: "an object";
		default:
			return "a JSON value";
	}
}

static char *
jbv_cstring(const JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A caller-supplied string cut to a length fit for an error message. */
static char *
clipped(const char *s, int len)
{
	int keep = pg_mbcliplen(s, len, 64);

	return keep < len ? psprintf("%s...", pnstrdup(s, keep))
					  : pnstrdup(s, len);
}

static bool
jbv_is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/* Call fn for every key of an object container, in storage order. */
static void
for_each_field(JsonbContainer *container, FieldFn fn, void *arg)
{
	JsonbIterator     *it = JsonbIteratorInit(container);
	JsonbValue         v;
	JsonbIteratorToken tok;
	char              *key = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = jbv_cstring(&v);
		else if (tok == WJB_VALUE)
			fn(key, &v, arg);
	}
}

/* ---- messages ---- */

typedef struct MessageParse
{
	LgMessage *msg;
	int        index;
	bool       has_role;
	bool       has_content;
} MessageParse;

static void
message_field(const char *key, JsonbValue *v, void *arg)
{
	MessageParse *mp = (MessageParse *) arg;

	if (strcmp(key, "role") == 0)
	{
		if (v->type != jbvString || !lg_role_parse(v->val.string.val,
												   v->val.string.len,
												   &mp->msg->role))
			ereport(ERROR,
					(errcode(ERRCODE_LG_INVALID_MESSAGES),
					 errmsg("messages[%d].role must be \"system\", \"user\" "
							"or \"assistant\"",
							mp->index),
					 v->type == jbvString
						 ? errdetail("Got \"%s\".",
									 clipped(v->val.string.val,
											 v->val.string.len))
						 : errdetail("Got %s.", jbv_type_name(v))));
		mp->has_role = true;
	}
	else if (strcmp(key, "content") == 0)
	{
		if (v->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_LG_INVALID_MESSAGES),
					 errmsg("messages[%d].content must be a string",
							mp->index),
					 errdetail("Got %s.", jbv_type_name(v))));
		mp->msg->content = jbv_cstring(v);
		mp->has_content = true;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("messages[%d] has an unsupported key \"%s\"",
						mp->index,
						clipped(key, strlen(key))),
				 errhint("A message is an object with exactly \"role\" and "
						 "\"content\".")));
}

/* Whether s holds anything but ASCII white space. */
static bool
has_visible_text(const char *s)
{
	for (; *s; s++)
		if (!scanner_isspace(*s))
			return true;
	return false;
}

static void
parse_messages(LgRequest *req, Jsonb *messages)
{
	bool   has_user = false;
	bool   has_text = false;
	size_t limit = (size_t) lg_max_request_kb * 1024;

	if (messages == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("messages must not be NULL"),
				 errhint("Pass a JSON array such as '[{\"role\": \"user\", "
						 "\"content\": \"Hello\"}]'.")));
	if (!JB_ROOT_IS_ARRAY(messages) || JB_ROOT_IS_SCALAR(messages))
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("messages must be a JSON array of {\"role\", "
						"\"content\"} objects"),
				 errdetail("Got %s.",
						   JB_ROOT_IS_OBJECT(messages) ? "an object"
													   : "a scalar")));
	req->nmessages = JB_ROOT_COUNT(messages);
	if (req->nmessages == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("messages must not be empty"),
				 errhint("Pass at least one {\"role\": \"user\", \"content\": "
						 "...} message.")));
	req->messages = palloc0(sizeof(LgMessage) * req->nmessages);
	for (int i = 0; i < req->nmessages; i++)
	{
		JsonbValue  *elem = getIthJsonbValueFromContainer(&messages->root, i);
		MessageParse mp = {&req->messages[i], i, false, false};

		if (!jbv_is_object(elem))
			ereport(ERROR,
					(errcode(ERRCODE_LG_INVALID_MESSAGES),
					 errmsg("messages[%d] must be an object with \"role\" and "
							"\"content\"",
							i),
					 errdetail("Got %s.", jbv_type_name(elem))));
		for_each_field(elem->val.binary.data, message_field, &mp);
		if (!mp.has_role || !mp.has_content)
			ereport(ERROR,
					(errcode(ERRCODE_LG_INVALID_MESSAGES),
					 errmsg("messages[%d] has no \"%s\"",
							i,
							mp.has_role ? "content" : "role")));
		has_user |= (req->messages[i].role == LG_ROLE_USER);
		has_text |= has_visible_text(req->messages[i].content);
		req->content_bytes += strlen(req->messages[i].content);
	}
	if (!has_user)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg(
					 "messages must contain at least one \"user\" message")));
	/* a provider would bill (or refuse) a request that says nothing */
	if (!has_text)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("messages hold no text"),
				 errdetail("Every message's content is empty or blank.")));
	if (req->content_bytes > limit)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("messages are too large"),
				 errdetail("They hold %zu bytes of text; the limit is %zu "
						   "bytes.",
						   req->content_bytes,
						   limit),
				 errhint("Shorten the conversation, or raise "
						 "llm_gateway.max_request_size.")));
}

/* ---- options ---- */

static char *
numeric_text(const JsonbValue *v)
{
	return DatumGetCString(
		DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
}

static void
option_error(const char *key, const char *expected, const JsonbValue *v)
{
	ereport(ERROR,
			(errcode(ERRCODE_LG_INVALID_OPTIONS),
			 errmsg("option \"%s\" must be %s", key, expected),
			 errdetail("Got %s.", jbv_type_name(v))));
}

static double
option_number(const char       *key,
			  const JsonbValue *v,
			  double            min,
			  double            max,
			  const char       *expected)
{
	double d;
	char  *text;

	if (v->type != jbvNumeric)
		option_error(key, expected, v);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (isnan(d) || d < min || d > max)
	{
		text = numeric_text(v);
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"%s\" must be %s", key, expected),
				 errdetail("Got %s.", clipped(text, strlen(text)))));
	}
	return d;
}

static int32
option_int(const char       *key,
		   const JsonbValue *v,
		   int32             min,
		   int32             max,
		   const char       *expected)
{
	double d = option_number(key, v, min, max, expected);

	if (d != floor(d))
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"%s\" must be %s", key, expected),
				 errdetail("Got %g, which is not a whole number.", d)));
	return (int32) d;
}

static char *
option_label(const char *key, const JsonbValue *v)
{
	if (v->type != jbvString)
		option_error(key, "a string", v);
	if (v->val.string.len == 0 || v->val.string.len > MAX_LABEL_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"%s\" must be between 1 and %d bytes long",
						key,
						MAX_LABEL_LEN)));
	return jbv_cstring(v);
}

/* One stop sequence: a non-empty string of at most MAX_STOP_BYTES. */
static char *
stop_sequence(const JsonbValue *s)
{
	if (s->type != jbvString || s->val.string.len == 0)
		option_error("stop", "a string or an array of non-empty strings", s);
	if (s->val.string.len > MAX_STOP_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("a \"stop\" sequence is longer than %d bytes",
						MAX_STOP_BYTES)));
	return jbv_cstring(s);
}

static List *
option_stop(const JsonbValue *v)
{
	List           *stop = NIL;
	JsonbContainer *c;
	int             n;

	if (v->type == jbvString)
		return list_make1(stop_sequence(v));
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		option_error("stop", "a string or an array of strings", v);
	c = v->val.binary.data;
	n = JsonContainerSize(c);
	if (n < 1 || n > MAX_STOP_SEQUENCES)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"stop\" must hold between 1 and %d sequences",
						MAX_STOP_SEQUENCES)));
	for (int i = 0; i < n; i++)
	{
		stop =
			lappend(stop, stop_sequence(getIthJsonbValueFromContainer(c, i)));
	}
	return stop;
}

static Jsonb *
option_metadata(const JsonbValue *v)
{
	Jsonb *jb;
	char  *text;

	if (!jbv_is_object(v))
		option_error("metadata", "a JSON object", v);
	jb = JsonbValueToJsonb((JsonbValue *) v);
	/* it must fit a spend slot, as text */
	text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	if (strlen(text) >= LG_METADATA_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"metadata\" is too large"),
				 errdetail("It takes %zu bytes as text; the limit is %d.",
						   strlen(text),
						   LG_METADATA_MAX - 1)));
	return jb;
}

static LgCacheMode
option_cache(const JsonbValue *v)
{
	static const char *const modes[] = {"default", "bypass", "refresh"};

	if (v->type == jbvString)
		for (int i = 0; i < (int) lengthof(modes); i++)
			if ((int) strlen(modes[i]) == v->val.string.len &&
				strncmp(modes[i], v->val.string.val, v->val.string.len) == 0)
				return (LgCacheMode) i;
	ereport(ERROR,
			(errcode(ERRCODE_LG_INVALID_OPTIONS),
			 errmsg("option \"cache\" must be \"default\", \"bypass\" or "
					"\"refresh\"")));
	pg_unreachable();
}

/* The names of LgPrivacy (here, with the option that takes them). */
static const char *const privacy_names[] = {"text", "hash", "none"};

bool
lg_privacy_parse(const char *s, int len, LgPrivacy *privacy)
{
	for (int i = 0; i < (int) lengthof(privacy_names); i++)
		if ((int) strlen(privacy_names[i]) == len &&
			strncmp(privacy_names[i], s, len) == 0)
		{
			*privacy = (LgPrivacy) i;
			return true;
		}
	return false;
}

static LgPrivacy
option_privacy(const JsonbValue *v)
{
	LgPrivacy privacy;

	if (v->type != jbvString ||
		!lg_privacy_parse(v->val.string.val, v->val.string.len, &privacy))
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"privacy\" must be \"text\", \"hash\" or "
						"\"none\""),
				 errdetail("A call may keep less of its content than its "
						   "tenant's setting, never more.")));
	return privacy;
}

static void
option_field(const char *key, JsonbValue *v, void *arg)
{
	LgOptions *o = (LgOptions *) arg;

	if (strcmp(key, "temperature") == 0)
	{
		option_number(key, v, 0, 2, "a number between 0 and 2");
		o->temperature = numeric_text(v);
	}
	else if (strcmp(key, "top_p") == 0)
	{
		option_number(key, v, 0, 1, "a number between 0 and 1");
		o->top_p = numeric_text(v);
	}
	else if (strcmp(key, "max_tokens") == 0)
		o->max_tokens =
			option_int(key, v, 1, 1000000, "an integer between 1 and 1000000");
	else if (strcmp(key, "stop") == 0)
		o->stop = option_stop(v);
	else if (strcmp(key, "agent") == 0)
		o->agent = option_label(key, v);
	else if (strcmp(key, "channel") == 0)
		o->channel = option_label(key, v);
	else if (strcmp(key, "session_id") == 0)
		o->session_id = option_label(key, v);
	else if (strcmp(key, "conversation_id") == 0)
		o->conversation_id = option_label(key, v);
	else if (strcmp(key, "metadata") == 0)
		o->metadata = option_metadata(v);
	else if (strcmp(key, "cache") == 0)
		o->cache = option_cache(v);
	else if (strcmp(key, "cache_ttl_s") == 0)
		o->cache_ttl_s = option_int(key,
									v,
									0,
									31 * 24 * 3600,
									"an integer between 0 and 2678400");
	else if (strcmp(key, "timeout_ms") == 0)
		o->timeout_ms =
			option_int(key, v, 1, 3600000, "an integer between 1 and 3600000");
	else if (strcmp(key, "fallback") == 0)
	{
		if (v->type != jbvBool)
			option_error(key, "a boolean", v);
		o->fallback = v->val.boolean;
	}
	else if (strcmp(key, "idempotency_key") == 0)
		o->idempotency_key = option_label(key, v);
	else if (strcmp(key, "privacy") == 0)
		o->privacy = option_privacy(v);
	else
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("unknown option \"%s\"", clipped(key, strlen(key))),
				 errhint(
					 "Options are temperature, max_tokens, top_p, stop, "
					 "agent, channel, session_id, "
					 "conversation_id, metadata, cache, cache_ttl_s, "
					 "timeout_ms, fallback, idempotency_key and privacy.")));
}

static void
parse_options(LgOptions *o, Jsonb *options)
{
	memset(o, 0, sizeof(*o));
	o->cache = LG_CACHE_DEFAULT;
	o->cache_ttl_s = -1;
	o->privacy = LG_PRIVACY_UNSET;
	o->fallback = true;
	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("options must be a JSON object"),
				 errhint("Pass '{}' for no options.")));
	for_each_field(&options->root, option_field, o);
}

static char *
nonempty_arg(text *arg, const char *what)
{
	char *s;

	if (arg == NULL)
		return NULL;
	s = text_to_cstring(arg);
	if (s[0] == '\0' || strlen(s) > MAX_LABEL_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d bytes long",
						what,
						MAX_LABEL_LEN)));
	return s;
}

void
lg_request_parse(
	LgRequest *req, text *tenant, text *model, Jsonb *messages, Jsonb *options)
{
	memset(req, 0, sizeof(*req));
	if (tenant == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant must not be NULL")));
	req->tenant = nonempty_arg(tenant, "tenant");
	req->model = nonempty_arg(model, "model");
	parse_messages(req, messages);
	parse_options(&req->opt, options);
}
