/* csv.h - private to src/sim: a small CSV table reader for the validation data (RFC 4180 quoting). */
#ifndef UMOE_SIM_CSV_H
#define UMOE_SIM_CSV_H
#include "umoe/common.h"

typedef struct {
    char *text;       /* the file, fields cut in place */
    size_t text_len;
    char ***cells;    /* cells[row][col]; row 0 is the header */
    int *n_cols;      /* per row */
    int n_rows;       /* including the header */
    int cap_rows;
} csv_table;

umoe_status csv_read(const char *path, csv_table *t);
void csv_free(csv_table *t);
/* Column index of a header name (case-insensitive), -1 when absent. */
int csv_col(const csv_table *t, const char *name);
/* Cell text ("" when the row is short or the column absent). */
const char *csv_get(const csv_table *t, int row, int col);
#endif
