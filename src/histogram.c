/*
 * histogram.c — latency distributions that add up: the rollups keep one per
 * row, merged with a plain element-wise sum, and any percentile is read
 * back from a merged one.
 *
 * A histogram is an int8[] of LG_HIST_BUCKETS counts; bucket b counts the
 * latencies in [0.1 ms × 2^(b/4), 0.1 ms × 2^((b+1)/4)) — four buckets per
 * doubling, from 0.1 ms to about 100 s (the first bucket takes anything
 * shorter, the last anything longer).  A percentile is the geometric middle
 * of its bucket, so it is within 9% of the true value.  An empty array is an
 * empty histogram.
 *
 *   llm_gateway.latency_hist(latency_ms)  aggregate: the histogram of values
 *   llm_gateway.hist_add(a, b)            the sum of two histograms
 *   llm_gateway.hist_merge(h)             aggregate: the sum of histograms
 *   llm_gateway.hist_percentile(h, q)     the q-th quantile (0..1), in ms
 */
#include "llm_gateway.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/numeric.h"

#define LG_HIST_BUCKETS      80
#define LG_HIST_BASE_MS      0.1
#define LG_HIST_PER_DOUBLING 4.0

PG_FUNCTION_INFO_V1(llm_gateway_hist_accum);
PG_FUNCTION_INFO_V1(llm_gateway_hist_add);
PG_FUNCTION_INFO_V1(llm_gateway_hist_percentile);

static int
bucket_of(double ms)
{
	double b;

	if (!(ms > LG_HIST_BASE_MS))
		return 0;
	b = floor(log2(ms / LG_HIST_BASE_MS) * LG_HIST_PER_DOUBLING);
	return (int) Min(b, LG_HIST_BUCKETS - 1);
}

/* The counts of a histogram array into counts[LG_HIST_BUCKETS]. */
static void
read_counts(ArrayType *a, int64 *counts)
{
	Datum *elems;
	bool  *nulls;
	int    n;

	memset(counts, 0, sizeof(int64) * LG_HIST_BUCKETS);
	if (a == NULL || ARR_NDIM(a) == 0)
		return;
	if (ARR_NDIM(a) != 1 || ARR_ELEMTYPE(a) != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a latency histogram is a one-dimensional bigint "
						"array")));
	deconstruct_array(a,
					  INT8OID,
					  8,
					  true,
					  TYPALIGN_DOUBLE,
					  &elems,
					  &nulls,
					  &n);
	for (int i = 0; i < Min(n, LG_HIST_BUCKETS); i++)
		counts[i] = nulls[i] ? 0 : DatumGetInt64(elems[i]);
}

static ArrayType *
make_array(const int64 *counts)
{
	Datum elems[LG_HIST_BUCKETS];

	for (int i = 0; i < LG_HIST_BUCKETS; i++)
		elems[i] = Int64GetDatum(counts[i]);
	return construct_array(elems,
						   LG_HIST_BUCKETS,
						   INT8OID,
						   8,
						   true,
						   TYPALIGN_DOUBLE);
}

/*
 * The aggregate's running state, changed in place: a full-size array made
 * in the aggregate's context on the first row.
 */
static ArrayType *
agg_state(FunctionCallInfo fcinfo, int64 **counts)
{
	MemoryContext aggcxt;
	MemoryContext old;
	ArrayType    *state;
	int64         zero[LG_HIST_BUCKETS] = {0};

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		return NULL;
	if (PG_ARGISNULL(0))
	{
		old = MemoryContextSwitchTo(aggcxt);
		state = make_array(zero);
		MemoryContextSwitchTo(old);
	}
	else
		state = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != LG_HIST_BUCKETS ||
		ARR_HASNULL(state))
		return NULL;
	*counts = (int64 *) ARR_DATA_PTR(state);
	return state;
}

/*
 * hist_accum(state int8[], latency_ms numeric) — the aggregate's step: one
 * more value (NULL latencies are not counted).
 */
Datum
llm_gateway_hist_accum(PG_FUNCTION_ARGS)
{
	int64      local[LG_HIST_BUCKETS];
	int64     *counts;
	ArrayType *state = agg_state(fcinfo, &counts);

	if (state == NULL)
	{
		read_counts(PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0), local);
		counts = local;
	}
	if (!PG_ARGISNULL(1))
		counts[bucket_of(DatumGetFloat8(
			DirectFunctionCall1(numeric_float8, PG_GETARG_DATUM(1))))]++;
	PG_RETURN_ARRAYTYPE_P(state ? state : make_array(local));
}

/*
 * hist_add(a int8[], b int8[]) — element-wise sum (a NULL is empty); in
 * place when it is the step of hist_merge().
 */
Datum
llm_gateway_hist_add(PG_FUNCTION_ARGS)
{
	int64      a[LG_HIST_BUCKETS];
	int64      b[LG_HIST_BUCKETS];
	int64     *sum;
	ArrayType *state = agg_state(fcinfo, &sum);

	if (state == NULL)
	{
		read_counts(PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0), a);
		sum = a;
	}
	read_counts(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), b);
	for (int i = 0; i < LG_HIST_BUCKETS; i++)
		sum[i] += b[i];
	PG_RETURN_ARRAYTYPE_P(state ? state : make_array(a));
}

/* hist_percentile(h int8[], q float8) — NULL for an empty histogram. */
Datum
llm_gateway_hist_percentile(PG_FUNCTION_ARGS)
{
	int64  counts[LG_HIST_BUCKETS];
	int64  total = 0;
	int64  seen = 0;
	double q;
	double rank;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	q = PG_GETARG_FLOAT8(1);
	if (!(q >= 0 && q <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the quantile must be between 0 and 1")));
	read_counts(PG_GETARG_ARRAYTYPE_P(0), counts);
	for (int i = 0; i < LG_HIST_BUCKETS; i++)
		total += counts[i];
	if (total == 0)
		PG_RETURN_NULL();
	rank = Max(ceil(q * total), 1);
	for (int i = 0; i < LG_HIST_BUCKETS; i++)
	{
		seen += counts[i];
		if (seen >= rank)
			PG_RETURN_FLOAT8(LG_HIST_BASE_MS *
							 pow(2.0, (i + 0.5) / LG_HIST_PER_DOUBLING));
	}
	PG_RETURN_NULL(); /* not reached */
}
