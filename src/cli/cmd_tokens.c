/* cmd_tokens.c - `umoe tokens IN OUT`: turn a file into a token shard (docs/formats-engine.md). By default
 * the tokenizer is byte-level (each byte one token, vocabulary 256); with --ids, IN holds whitespace-
 * separated decimal token ids made by any external tokenizer. Does not: implement BPE or other tokenizers. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "umoe/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: umoe tokens IN OUT [--dtype u16|u32] [--ids] [--vocab V]\n\n"
               "Write the token shard OUT (header + little-endian ids) from IN:\n"
               "  default   every byte of IN is one token (byte-level vocabulary, V = 256)\n"
               "  --ids     IN holds whitespace-separated decimal token ids (any tokenizer's output)\n"
               "  --dtype   u16 (default; ids up to 65535) or u32\n"
               "  --vocab V the vocabulary the ids belong to (stored in the header; every id must be < V;\n"
               "            default 256 for bytes, the largest id + 1 for --ids)\n"
               "Train on the shard with: umoe train MODEL --data OUT\n");
}

static int parse_ids(const char *path, const char *text, size_t len, uint32_t **out, uint64_t *n_out, size_t *cap_out) {
    size_t cap = 1024, n = 0;
    uint32_t *tok = umoe_malloc(cap * sizeof *tok, "token ids");
    size_t i = 0;
    long line = 1;
    while (i < len) {
        if (isspace((unsigned char)text[i])) { line += text[i] == '\n'; i++; continue; }
        char *end;
        errno = 0;
        unsigned long long v = isdigit((unsigned char)text[i]) ? strtoull(text + i, &end, 10) : 0;
        if (!isdigit((unsigned char)text[i]) || errno || v > 0xffffffffULL ||
            (*end && !isspace((unsigned char)*end))) {
            int w = 0;
            while (i + (size_t)w < len && w < 20 && !isspace((unsigned char)text[i + (size_t)w])) w++;
            fprintf(stderr, "umoe tokens: %s line %ld: \"%.*s\" is not a token id (a decimal integer in "
                            "0..4294967295)\n", path, line, w, text + i);
            umoe_free(tok, cap * sizeof *tok);
            return UMOE_EXIT_INPUT;
        }
        if (n == cap) {
            tok = umoe_realloc(tok, cap * sizeof *tok, 2 * cap * sizeof *tok, "token ids");
            cap *= 2;
        }
        tok[n++] = (uint32_t)v;
        i = (size_t)(end - text);
    }
    *out = tok;
    *n_out = n;
    *cap_out = cap;
    return 0;
}

int cmd_tokens(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int width = 2, ids = 0;
    long long vocab = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return UMOE_EXIT_OK; }
        if (!strcmp(a, "--dtype")) {
            const char *v = cli_value("tokens", argc, argv, i++);
            if (!v) return UMOE_EXIT_INPUT;
            if (!strcmp(v, "u16")) width = 2;
            else if (!strcmp(v, "u32")) width = 4;
            else { fprintf(stderr, "umoe tokens: --dtype = \"%s\" is not allowed (u16 or u32)\n", v); return UMOE_EXIT_INPUT; }
        } else if (!strcmp(a, "--ids")) {
            ids = 1;
        } else if (!strcmp(a, "--vocab")) {
            const char *v = cli_value("tokens", argc, argv, i++);
            if (!v || cli_parse_int("tokens", "--vocab", v, 1, 0xffffffffLL, &vocab)) return UMOE_EXIT_INPUT;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown("tokens", a);
        } else if (!in) in = a;
        else if (!out) out = a;
        else return cli_unknown("tokens", a);
    }
    if (!in || !out) {
        usage(stderr);
        return UMOE_EXIT_INPUT;
    }
    size_t len;
    char *text = umoe_read_file(in, &len);
    if (!text) return cli_input_error();
    if (len == 0) {
        fprintf(stderr, "umoe tokens: %s is empty (nothing to tokenize)\n", in);
        umoe_free(text, 1);
        return UMOE_EXIT_INPUT;
    }
    uint32_t *tok = NULL;
    uint64_t n = 0;
    size_t cap = 0;
    if (ids) {
        int rc = parse_ids(in, text, len, &tok, &n, &cap);
        if (rc) { umoe_free(text, len + 1); return rc; }
        if (n == 0) {
            fprintf(stderr, "umoe tokens: %s holds no token ids\n", in);
            umoe_free(text, len + 1);
            umoe_free(tok, cap * sizeof *tok);
            return UMOE_EXIT_INPUT;
        }
    } else {
        n = cap = len;
        tok = umoe_malloc(n * sizeof *tok, "tokens");
        for (size_t i = 0; i < len; i++) tok[i] = (unsigned char)text[i];
    }
    umoe_free(text, len + 1);
    uint32_t mx = 0;
    for (uint64_t i = 0; i < n; i++) if (tok[i] > mx) mx = tok[i];
    if (vocab < 0) vocab = ids ? (long long)mx + 1 : 256;
    int rc = UMOE_EXIT_OK;
    if ((long long)mx >= vocab) {
        fprintf(stderr, "umoe tokens: %s holds token id %u, outside --vocab %lld (ids 0..%lld)\n", in, mx, vocab,
                vocab - 1);
        rc = UMOE_EXIT_INPUT;
    } else if (train_shard_write(out, tok, n, width, (uint32_t)vocab) != UMOE_OK) {
        rc = cli_input_error();
    } else {
        printf("wrote %s: %llu tokens (%s), vocabulary %lld\n", out, (unsigned long long)n, width == 2 ? "u16" : "u32",
               vocab);
    }
    umoe_free(tok, cap * sizeof *tok);
    return rc;
}
