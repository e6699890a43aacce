/*
 * spend_internal.h — what spend.c (the callers' side of the spend queue)
 * and spend_flush.c (the writers' side) share.
 */
#ifndef LG_SPEND_INTERNAL_H
#define LG_SPEND_INTERNAL_H

#include "shmem.h"

/* A reference to a slot, valid while the slot's generation is unchanged. */
typedef struct SlotRef
{
	int    slot;
	uint64 generation;
} SlotRef;

typedef struct RefList
{
	SlotRef *refs;
	int      n;
	int      cap;
} RefList;

/* Slots this backend claimed as a writer: freed at its commit. */
extern RefList lg_spend_claimed;

extern void lg_spend_ref_add(RefList *list, int slot, uint64 generation);
extern LgSpendSlot *lg_spend_slot_if_current(const SlotRef *ref);
extern void         lg_spend_slot_free(int i);

#endif /* LG_SPEND_INTERNAL_H */
