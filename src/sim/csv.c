/* csv.c - reads a CSV file into a table of strings: one read, fields cut in place, quoted fields with ""
 * escapes and embedded commas/newlines (RFC 4180). Does not: convert types or know any column. */
#include <string.h>
#include "csv.h"

#define CSV_MAX_COLS 256

static umoe_status push_row(csv_table *t, char **fields, int n) {
    if (t->n_rows == t->cap_rows) {
        int nc = t->cap_rows ? 2 * t->cap_rows : 64;
        t->cells = umoe_realloc(t->cells, sizeof(char **) * t->cap_rows, sizeof(char **) * nc, "csv rows");
        t->n_cols = umoe_realloc(t->n_cols, sizeof(int) * t->cap_rows, sizeof(int) * nc, "csv cols");
        t->cap_rows = nc;
    }
    char **row = umoe_malloc(sizeof(char *) * (n > 0 ? n : 1), "csv row");
    memcpy(row, fields, sizeof(char *) * n);
    t->cells[t->n_rows] = row;
    t->n_cols[t->n_rows] = n;
    t->n_rows++;
    return UMOE_OK;
}

umoe_status csv_read(const char *path, csv_table *t) {
    memset(t, 0, sizeof *t);
    t->text = umoe_read_file(path, &t->text_len);
    if (!t->text) return umoe_fail("%s: cannot read the file", path);
    char *fields[CSV_MAX_COLS];
    int nf = 0;
    char *p = t->text, *end = t->text + t->text_len;
    if (t->text_len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF) p += 3;
    while (p < end) {
        /* one field */
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            while (p < end) {
                if (*p == '"' && p + 1 < end && p[1] == '"') { *out++ = '"'; p += 2; }
                else if (*p == '"') { p++; break; }
                else *out++ = *p++;
            }
            while (p < end && *p != ',' && *p != '\n' && *p != '\r') p++; /* junk after the quote */
        } else {
            while (p < end && *p != ',' && *p != '\n' && *p != '\r') p++;
            out = p;
        }
        char sep = p < end ? *p : '\n';
        *out = '\0';
        if (nf == CSV_MAX_COLS) { csv_free(t); return umoe_fail("%s: more than %d columns", path, CSV_MAX_COLS); }
        fields[nf++] = start;
        if (p < end) p++;
        if (sep == '\r' && p < end && *p == '\n') p++;
        if (sep != ',') {
            if (!(nf == 1 && fields[0][0] == '\0')) push_row(t, fields, nf); /* skip blank lines */
            nf = 0;
        }
    }
    if (nf > 0) push_row(t, fields, nf);
    if (t->n_rows == 0) { csv_free(t); return umoe_fail("%s: empty file (a header line is needed)", path); }
    return UMOE_OK;
}

void csv_free(csv_table *t) {
    for (int i = 0; i < t->n_rows; i++) umoe_free(t->cells[i], sizeof(char *) * (t->n_cols[i] > 0 ? t->n_cols[i] : 1));
    if (t->cells) umoe_free(t->cells, sizeof(char **) * t->cap_rows);
    if (t->n_cols) umoe_free(t->n_cols, sizeof(int) * t->cap_rows);
    if (t->text) umoe_free(t->text, t->text_len + 1);
    memset(t, 0, sizeof *t);
}

int csv_col(const csv_table *t, const char *name) {
    for (int c = 0; c < t->n_cols[0]; c++)
        if (umoe_streq_nocase(t->cells[0][c], name)) return c;
    return -1;
}

const char *csv_get(const csv_table *t, int row, int col) {
    if (col < 0 || row < 0 || row >= t->n_rows || col >= t->n_cols[row]) return "";
    return t->cells[row][col];
}
