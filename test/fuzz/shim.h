/* shim.h — see shim.c. */
#ifndef LG_FUZZ_SHIM_H
#define LG_FUZZ_SHIM_H

/* Free everything palloc'd since the last reset. */
extern void shim_reset(void);

/*
 * Run stmt; an ereport(ERROR) inside it comes back here (a refusal is an
 * expected outcome for bad input, a crash is not).
 */
#define SHIM_GUARD(stmt)                          \
	do                                            \
	{                                             \
		sigjmp_buf  jb_;                          \
		sigjmp_buf *saved_ = PG_exception_stack;  \
		if (sigsetjmp(jb_, 0) == 0)               \
		{                                         \
			PG_exception_stack = &jb_;            \
			stmt;                                 \
		}                                         \
		PG_exception_stack = saved_;              \
	} while (0)

#endif
