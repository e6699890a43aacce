/*
 * spi_util.c — helpers for the extension's own catalog queries (see
 * spi_util.h).
 */
#include "spi_util.h"

#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"

SPIPlanPtr
lg_spi_prepare_once(SPIPlanPtr *cache,
					const char *sql,
					int         nargs,
					const Oid  *argtypes)
{
	if (*cache == NULL)
	{
		/*
		 * Generic plans: these are short index lookups whose best plan does
		 * not depend on the values, and re-planning them for every call
		 * (the plan cache's first guesses) cost more than the queries.
		 */
		SPIPlanPtr plan = SPI_prepare_cursor(sql,
											 nargs,
											 (Oid *) argtypes,
											 CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR,
				 "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*cache = plan;
	}
	return *cache;
}

void
lg_spi_select(SPIPlanPtr plan, Datum *values)
{
	int rc = SPI_execute_plan(plan, values, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "catalog lookup failed: %s", SPI_result_code_string(rc));
}

Datum
lg_spi_col(int row, int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row],
						 SPI_tuptable->tupdesc,
						 column,
						 isnull);
}

char *
lg_spi_text(int row, int column, MemoryContext cxt)
{
	bool          isnull;
	Datum         d = lg_spi_col(row, column, &isnull);
	MemoryContext old;
	char         *s;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	s = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return s;
}

int64
lg_spi_int64(int row, int column)
{
	bool  isnull;
	Datum d = lg_spi_col(row, column, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

int32
lg_spi_int32(int row, int column)
{
	bool  isnull;
	Datum d = lg_spi_col(row, column, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

bool
lg_spi_bool(int row, int column)
{
	bool  isnull;
	Datum d = lg_spi_col(row, column, &isnull);

	return !isnull && DatumGetBool(d);
}

/* A text[] column as a List of C strings in cxt; NIL when NULL. */
List *
lg_spi_text_list(int row, int column, MemoryContext cxt)
{
	bool          isnull;
	Datum         d = lg_spi_col(row, column, &isnull);
	Datum        *elems;
	bool         *nulls;
	int           n;
	List         *list = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	old = MemoryContextSwitchTo(cxt);
	deconstruct_array(DatumGetArrayTypeP(d),
					  TEXTOID,
					  -1,
					  false,
					  TYPALIGN_INT,
					  &elems,
					  &nulls,
					  &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			list = lappend(list, TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return list;
}
