/*
 * stubs.c — the server functions only the request builders call.  The
 * builders are linked (the protocol tables point at them) but never run by
 * the fuzz targets; reaching one of these is a bug in the target.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include <stdlib.h>

#define UNREACHABLE(sig) \
	sig                  \
	{                    \
		abort();         \
	}

UNREACHABLE(Datum DirectFunctionCall1Coll(PGFunction f, Oid c, Datum a))
UNREACHABLE(Datum DirectFunctionCall3Coll(PGFunction f, Oid c, Datum a, Datum b, Datum d))
UNREACHABLE(Jsonb *JsonbValueToJsonb(JsonbValue *v))
UNREACHABLE(Numeric int64_to_numeric(int64 v))
UNREACHABLE(Datum jsonb_in(PG_FUNCTION_ARGS))
UNREACHABLE(Datum numeric_in(PG_FUNCTION_ARGS))
UNREACHABLE(struct varlena *pg_detoast_datum(struct varlena *d))
UNREACHABLE(JsonbValue *pushJsonbValue(JsonbParseState **s, JsonbIteratorToken t, JsonbValue *v))
