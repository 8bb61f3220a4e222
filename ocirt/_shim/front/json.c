/* ---- state.json: a strict reader of the layout State.to_json writes ----
 *
 * jsonfast.dumps(doc, indent=RULE_STATE_INDENT) + "\n" (ocirt/jsonfast.py): every
 * member and element on its own line, indented by depth, ": " after keys, "," at
 * line ends, {} and [] when empty, strings as json's ensure_ascii renders them.
 * The OCI members (RULE_OCI_MEMBERS, in that order) come first, then
 * RULE_OWN_MEMBER last. Because the OCI members sit at the same depth in state.json
 * and in `ocirt state`'s output, their text is copied as it is; so the reader
 * accepts there only text that Python would render back identically (canonical
 * strings and integers, no duplicate keys), and defers on anything else. */

#include "front.h"

#define MAX_DEPTH 64

/* JSON whitespace, skipped in RULE_OWN_MEMBER only. */
void ws(struct rd *r)
{
    if (!r->oci)
        while (r->p < r->e && (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r'))
            r->p++;
}

int lit(struct rd *r, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(r->e - r->p) < n || memcmp(r->p, s, n))
        return 0;
    r->p += n;
    return 1;
}

/* `s` after whitespace (none in the OCI members). */
int tok(struct rd *r, const char *s)
{
    ws(r);
    return lit(r, s);
}

/* The line break and indent before a member or element at `depth` (in
 * RULE_OWN_MEMBER: any whitespace). */
int nl(struct rd *r, int depth)
{
    if (!r->oci) {
        ws(r);
        return 1;
    }
    size_t n = 1 + (size_t)depth * RULE_STATE_INDENT;
    if ((size_t)(r->e - r->p) < n || r->p[0] != '\n')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (r->p[i] != ' ')
            return 0;
    r->p += n;
    return 1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A string as ensure_ascii writes it: printable ASCII but `"` and `\` as they are,
 * \" \\ \b \f \n \r \t, and \u with four lower-case hex digits for everything else.
 * *s and *n: its text between the quotes. */
static int str(struct rd *r, const char **s, size_t *n)
{
    if (r->p >= r->e || *r->p != '"')
        return 0;
    const char *q = ++r->p;
    while (r->p < r->e) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            *s = q;
            *n = (size_t)(r->p - q);
            r->p++;
            return 1;
        }
        if (c < 0x20 || c > 0x7e)
            return 0;
        if (c != '\\') {
            r->p++;
            continue;
        }
        if (r->e - r->p < 2)
            return 0;
        char k = r->p[1];
        if (k == '"' || k == '\\' || k == 'b' || k == 'f' || k == 'n' || k == 'r' || k == 't') {
            r->p += 2;
            continue;
        }
        if (k != 'u' || r->e - r->p < 6)
            return 0;
        unsigned v = 0;
        for (int i = 2; i < 6; i++) {
            int h = hexval(r->p[i]);
            if (h < 0)
                return 0;
            v = v * 16 + (unsigned)h;
        }
        if ((v >= 0x20 && v < 0x7f) || v == '\b' || v == '\f' || v == '\n' || v == '\r'
            || v == '\t')
            return 0;  /* Python writes these another way */
        r->p += 6;
    }
    return 0;
}

static unsigned u4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)hexval(p[i]);
    return v;
}

/* The bytes Python's os functions would use for a string str() accepted: UTF-8,
 * and U+DC80..U+DCFF (surrogateescape) as the byte they stand for; NULL for a NUL or
 * any other lone surrogate (Python could not use it as a path either). */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; ) {
        if (s[i] != '\\') {
            *o++ = s[i++];
            continue;
        }
        char k = s[i + 1];
        if (k != 'u') {
            *o++ = k == 'b' ? '\b' : k == 'f' ? '\f' : k == 'n' ? '\n' : k == 'r' ? '\r'
                 : k == 't' ? '\t' : k;
            i += 2;
            continue;
        }
        unsigned v = u4(s + i + 2);
        i += 6;
        if (v >= 0xd800 && v < 0xdc00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u'
            && u4(s + i + 2) >= 0xdc00 && u4(s + i + 2) < 0xe000) {
            v = 0x10000 + ((v - 0xd800) << 10) + (u4(s + i + 2) - 0xdc00);
            i += 6;
        } else if (v >= 0xdc80 && v <= 0xdcff) {
            *o++ = (char)(v - 0xdc00);
            continue;
        } else if (v == 0 || (v >= 0xd800 && v < 0xe000)) {
            free(out);
            return NULL;
        }
        if (v < 0x80) {
            *o++ = (char)v;
        } else if (v < 0x800) {
            *o++ = (char)(0xc0 | (v >> 6));
            *o++ = (char)(0x80 | (v & 0x3f));
        } else if (v < 0x10000) {
            *o++ = (char)(0xe0 | (v >> 12));
            *o++ = (char)(0x80 | ((v >> 6) & 0x3f));
            *o++ = (char)(0x80 | (v & 0x3f));
        } else {
            *o++ = (char)(0xf0 | (v >> 18));
            *o++ = (char)(0x80 | ((v >> 12) & 0x3f));
            *o++ = (char)(0x80 | ((v >> 6) & 0x3f));
            *o++ = (char)(0x80 | (v & 0x3f));
        }
    }
    *o = 0;
    return out;
}

/* A string value, decoded (see decode). */
char *str_value(struct rd *r)
{
    const char *s;
    size_t n;
    return str(r, &s, &n) ? decode(s, n) : NULL;
}

/* An integer as Python writes one: -?(0|[1-9][0-9]*), not -0. *v when it fits. */
int integer(struct rd *r, long long *v)
{
    const char *p = r->p;
    int neg = p < r->e && *p == '-';
    p += neg;
    if (p >= r->e || *p < '0' || *p > '9' || (*p == '0' && p + 1 < r->e && p[1] >= '0'
                                               && p[1] <= '9'))
        return 0;
    unsigned long long x = 0;
    int big = 0;
    for (; p < r->e && *p >= '0' && *p <= '9'; p++) {
        if (x > (9223372036854775807ULL - (unsigned)(*p - '0')) / 10)
            big = 1;
        x = x * 10 + (unsigned)(*p - '0');
    }
    if (neg && x == 0)
        return 0;
    if (p < r->e && (*p == '.' || *p == 'e' || *p == 'E'))
        return 0;  /* a float */
    if (v) {
        if (big)
            return 0;
        *v = neg ? -(long long)x : (long long)x;
    }
    r->p = p;
    return 1;
}

/* Any JSON number (ocirt's own members only: their floats are not copied). */
static int number(struct rd *r)
{
    const char *p = r->p;
    if (p < r->e && *p == '-')
        p++;
    if (p >= r->e || *p < '0' || *p > '9')
        return 0;
    if (*p == '0')
        p++;
    else
        while (p < r->e && *p >= '0' && *p <= '9')
            p++;
    if (p < r->e && *p == '.') {
        if (++p >= r->e || *p < '0' || *p > '9')
            return 0;
        while (p < r->e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->e && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->e || *p < '0' || *p > '9')
            return 0;
        while (p < r->e && *p >= '0' && *p <= '9')
            p++;
    }
    r->p = p;
    return 1;
}

/* An object or array at `depth` (its members or elements one deeper). */
static int container(struct rd *r, int depth)
{
    char close = *r->p == '{' ? '}' : ']';
    r->p++;
    ws(r);
    if (r->p < r->e && *r->p == close) {
        r->p++;
        return 1;
    }
    const char **keys = NULL;
    size_t *lens = NULL, nk = 0, cap = 0;
    int ok = 0;
    for (;;) {
        if (!nl(r, depth + 1))
            goto out;
        if (close == '}') {
            const char *k;
            size_t kn;
            if (!str(r, &k, &kn) || !(r->oci ? lit(r, ": ") : tok(r, ":")))
                goto out;
            ws(r);
            if (r->oci) {
                /* a repeated key: Python keeps one; its text is canonical, so equal
                 * keys are equal text */
                for (size_t i = 0; i < nk; i++)
                    if (lens[i] == kn && !memcmp(keys[i], k, kn))
                        goto out;
                if (nk == cap) {
                    cap = cap ? cap * 2 : 16;
                    const char **nkeys = realloc(keys, cap * sizeof *keys);
                    if (!nkeys)
                        goto out;
                    keys = nkeys;
                    size_t *nlens = realloc(lens, cap * sizeof *lens);
                    if (!nlens)
                        goto out;
                    lens = nlens;
                }
                keys[nk] = k;
                lens[nk++] = kn;
            }
        }
        if (!value(r, depth + 1))
            goto out;
        if (tok(r, ","))
            continue;
        ok = nl(r, depth) && r->p < r->e && *r->p++ == close;
        goto out;
    }
out:
    free(keys);
    free(lens);
    return ok;
}

int value(struct rd *r, int depth)
{
    if (r->p >= r->e || depth > MAX_DEPTH)
        return 0;
    const char *s;
    size_t n;
    switch (*r->p) {
    case '{':
    case '[':
        return container(r, depth);
    case '"':
        return str(r, &s, &n);
    case 't':
        return lit(r, "true");
    case 'f':
        return lit(r, "false");
    case 'n':
        return lit(r, "null");
    }
    if (r->oci)
        return integer(r, NULL);
    return lit(r, "NaN") || lit(r, "Infinity") || lit(r, "-Infinity") || number(r);
}

/* `"name": ` at the start of a member; when name is NULL, any key (in key, kn). */
int member(struct rd *r, int depth, const char *name, const char **key, size_t *kn)
{
    const char *k;
    size_t n;
    if (!nl(r, depth) || !str(r, &k, &n) || !(r->oci ? lit(r, ": ") : tok(r, ":")))
        return 0;
    ws(r);
    if (name)
        return strlen(name) == n && !memcmp(k, name, n);
    *key = k;
    *kn = n;
    return 1;
}

int is_key(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && !memcmp(k, name, n);
}

int boolean(struct rd *r, int *v)
{
    if (lit(r, "true"))
        return *v = 1;
    if (lit(r, "false"))
        return !(*v = 0);
    return 0;
}

/* The next member of an object: its "{" before the first, a "," before the others.
 * 1 with its key read, 0 when the object ends (its "}" read), -1 on anything else. */
int next_key(struct rd *r, int depth, int *first, const char **k, size_t *kn)
{
    if (*first) {
        *first = 0;
        if (!tok(r, "{"))
            return -1;
    } else if (!tok(r, ",")) {
        return tok(r, "}") ? 0 : -1;
    }
    return member(r, depth, NULL, k, kn) ? 1 : -1;
}
