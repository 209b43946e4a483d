/* search_internal.h - shared between the planner's files (search*.c, sweep*.c); not a public API. */
#ifndef UMOE_SEARCH_INTERNAL_H
#define UMOE_SEARCH_INTERNAL_H
#include <stdlib.h>
#include "umoe/plan.h"

/* The best `cap` entries seen so far, sorted best first. */
typedef struct { plan_entry *e; int n, cap; } plan_topk;
void plan_topk_init(plan_topk *t, int cap);
void plan_topk_free(plan_topk *t);
void plan_topk_add(plan_topk *t, const plan_entry *x);
void plan_entries_sort(plan_entry *e, int n);
#endif
