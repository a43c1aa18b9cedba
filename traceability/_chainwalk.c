/* The inner loop of traceability.services.audit_bulk.ChainWalk, compiled.
 *
 * Copyright (C) the traceability authors. SPDX-License-Identifier: GPL-3.0-or-later
 *
 * walk(data, pos, tag, heads, at, seq, prev, nodes, devices) walks the binary COPY rows of
 * audit_repo.CHAIN_COPY in data[pos:] (the layout audit_bulk.ChainWalk reads) for as long as each row is an
 * ordinary link of the chains being walked: the expected field count and field lengths, no opening, the
 * expected seq and prev hash, a stored hash that is SHA-256 of the tag, the row's prev hash and its canonical
 * bytes, and no seal in its canonical bytes (a seal needs an opening). ``heads`` are the batch heads in
 * order (HEAD_SIZE bytes each), ``at`` the one whose chain is being walked (-1 before the first), ``seq``
 * and ``prev`` what its next row must have; a row of another batch closes that chain (its last seq and hash
 * must be the head's) and opens the next head's, which must be the row's batch. It stops before the first
 * row that is anything else (a row with an opening, or one that does not hold) and before a row not wholly
 * in data; the Python walker takes that row. ``nodes`` and ``devices`` are the ids that exist, in ascending
 * order as 8-byte big-endian integers (audit_repo.known_ids).
 *
 * Returns (pos, at, seq, prev, events, batches, unnamed): where it stopped, the head being walked, the seq
 * and prev hash its next row must have, how many rows it took, how many batches it opened, and how many of
 * those rows name a node or device that does not exist.
 *
 * digests_are(data, width, expected) says whether ``expected`` is the SHA-256 of each ``width`` bytes of
 * ``data`` in turn (audit_bulk.leaves_hold: each leaf hash that of its event's hash after 0x00).
 *
 * counts_up(data, first) says how many of the 8-byte big-endian integers of ``data`` count up from ``first``
 * before the first that does not (audit_bulk.first_gap: a log's leaf indexes, each the one before plus one).
 *
 * node_row(row) is the row of RFC 9162 node hashes SHA-256(0x01 || left || right) above a row of hashes
 * (ledger.tile_levels: a tile's 255 interior hashes, for the audit's rebuilt log and for proofs).
 *
 * path_within(at, group, upper) is the inclusion proof inside a full tile of the leaf at offset ``at``, from
 * its aligned group of 16 stored hashes and the tile's upper rows (ledger.tile_levels.path_within, which
 * says the layout): 8 hashes, as every proof of a full tile's leaf needs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifdef CHAINWALK_OPENSSL
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

/* OpenSSL's SHA-256 behind the names the built-in one below has. */
typedef SHA256_CTX sha256_state;
#define sha_init(s) SHA256_Init(s)
#define sha_update(s, data, n) SHA256_Update((s), (data), (n))
#define sha_final(s, out) SHA256_Final((out), (s))
#define DIGEST_NAME "openssl"
#else
/* FIPS 180-4 SHA-256, for a build without OpenSSL's headers. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
compress(uint32_t h[8], const unsigned char *block)
{
    uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
               (uint32_t)block[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (i = 0; i < 64; i++) {
        t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

typedef struct {
    uint32_t h[8];
    unsigned char block[64];
    size_t held;     /* bytes in block */
    uint64_t total;  /* bytes taken */
} sha256_state;

static void
sha_init(sha256_state *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->held = 0;
    s->total = 0;
}

static void
sha_update(sha256_state *s, const unsigned char *data, size_t n)
{
    s->total += n;
    if (s->held) {
        size_t take = 64 - s->held < n ? 64 - s->held : n;
        memcpy(s->block + s->held, data, take);
        s->held += take, data += take, n -= take;
        if (s->held < 64)
            return;
        compress(s->h, s->block);
        s->held = 0;
    }
    for (; n >= 64; data += 64, n -= 64)
        compress(s->h, data);
    memcpy(s->block, data, n);
    s->held = n;
}

static void
sha_final(sha256_state *s, unsigned char out[32])
{
    uint64_t bits = s->total * 8;
    unsigned char pad[72] = {0x80};
    size_t padding = (s->held < 56 ? 56 : 120) - s->held;
    int i;
    for (i = 0; i < 8; i++)
        pad[padding + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(s, pad, padding + 8);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

#define DIGEST_NAME "builtin"
#endif

static void
digest(const unsigned char *data, size_t n, unsigned char out[32])
{
    sha256_state s;
    sha_init(&s);
    sha_update(&s, data, n);
    sha_final(&s, out);
}

/* SHA-256 of a || b || c. */
static void
digest3(const unsigned char *a, size_t na, const unsigned char *b, size_t nb, const unsigned char *c, size_t nc,
        unsigned char out[32])
{
    sha256_state s;
    sha_init(&s);
    sha_update(&s, a, na);
    sha_update(&s, b, nb);
    sha_update(&s, c, nc);
    sha_final(&s, out);
}

/* A row of audit_repo.CHAIN_COPY (audit_bulk.ChainWalk): int16 field count 8, then each field's int32 length
 * (-1 for NULL) and value: batch int8, seq int4, hash bytea(32), prev_hash bytea(32), node int8, device
 * int8 or NULL, canonical bytea, the opening bytea or NULL. HEAD is the fixed part, up to the device's length. */
#define HEAD 110
#define HASH 32

static inline uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t
be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static inline int
fixed(const unsigned char *row)
{
    return row[0] == 0 && row[1] == 8 && be32(row + 2) == 8 && be32(row + 14) == 4 && be32(row + 22) == HASH &&
           be32(row + 58) == HASH && be32(row + 94) == 8;
}

/* Whether ``id`` is one of the ``n`` ascending 8-byte big-endian integers at ``ids``. */
static int
known(const unsigned char *ids, Py_ssize_t n, int64_t id)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        int64_t at = (int64_t)be64(ids + 8 * mid);
        if (at == id)
            return 1;
        if (at < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Whether data[0:n] holds the bytes that open a seal in canonical bytes (audit_bulk.SEALED). memmem, which
 * skips ahead by the needle, rather than a stop at every quote: canonical JSON is full of them. */
static int
has_seal(const unsigned char *data, size_t n)
{
    static const char sealed[] = "\"sealed\":";
    return memmem(data, n, sealed, sizeof sealed - 1) != NULL;
}

/* A batch head as audit_bulk.ChainWalk packs them: batch id, seq (8-byte big-endian integers), head hash, and
 * the hash its first event links to (its genesis, or where a chain received from another ledger starts). */
#define HEAD_SIZE (16 + 2 * HASH)

static PyObject *
walk(PyObject *self, PyObject *args)
{
    Py_buffer data, tag, heads, prev, nodes, devices;
    Py_ssize_t pos, at, count;
    long long seq;
    long long events = 0, batches = 0, unnamed = 0;
    unsigned char expected[HASH], hashed[HASH];
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*ny*y*nLy*y*y*", &data, &pos, &tag, &heads, &at, &seq, &prev, &nodes, &devices))
        return NULL;
    count = heads.len / HEAD_SIZE;
    if (pos < 0 || pos > data.len || heads.len % HEAD_SIZE || at < -1 || at >= count || nodes.len % 8 ||
        devices.len % 8) {
        PyErr_SetString(PyExc_ValueError, "position or head out of range, or heads or ids not whole records");
        goto done;
    }
    if (prev.len != HASH && at >= 0) {  /* a prev of any other length matches no row: the Python walker takes it */
        result = Py_BuildValue("nnLy#LLL", pos, at, seq, (const char *)prev.buf, prev.len, events, batches, unnamed);
        goto done;
    }
    memcpy(expected, prev.buf, prev.len == HASH ? HASH : 0);
    {
        const unsigned char *buf = data.buf, *head = at >= 0 ? (const unsigned char *)heads.buf + at * HEAD_SIZE : NULL;
        Py_ssize_t end = data.len;
        while (end - pos >= HEAD + 8) {
            const unsigned char *row = buf + pos, *value;
            int32_t device_len = (int32_t)be32(row + 106), size;
            Py_ssize_t left;
            int64_t batch;
            if (!fixed(row) || (device_len != 8 && device_len != -1))
                break;  /* not a well-formed row: the Python walker says so */
            value = row + HEAD + (device_len == 8 ? 8 : 0);
            left = end - (value - buf);
            if (left < 4 || (size = (int32_t)be32(value)) < 0 || (int64_t)size > (int64_t)left - 8)
                break;  /* not all here yet (or not well-formed) */
            if ((int32_t)be32(value + 4 + size) != -1)
                break;  /* an opening to check against its seal */
            batch = (int64_t)be64(row + 6);
            if (head == NULL || batch != (int64_t)be64(head)) {  /* the next batch: close this one, open that */
                if (head != NULL && (seq - 1 != (long long)(int64_t)be64(head + 8) || memcmp(expected, head + 16, HASH)))
                    break;
                if (at + 1 >= count || batch != (int64_t)be64((const unsigned char *)heads.buf + (at + 1) * HEAD_SIZE))
                    break;
                head = (const unsigned char *)heads.buf + ++at * HEAD_SIZE;
                seq = 1;
                memcpy(expected, head + 16 + HASH, HASH);
                batches++;
            }
            if ((long long)(int32_t)be32(row + 18) != seq || memcmp(row + 62, expected, HASH) != 0)
                break;
            digest3(tag.buf, (size_t)tag.len, row + 62, HASH, value + 4, (size_t)size, hashed);
            if (memcmp(hashed, row + 26, HASH) != 0 || has_seal(value + 4, (size_t)size))
                break;  /* a seal needs its opening: the Python walker names the row as not holding */
            if (!known(nodes.buf, nodes.len / 8, (int64_t)be64(row + 98)) ||
                (device_len == 8 && !known(devices.buf, devices.len / 8, (int64_t)be64(row + 110))))
                unnamed++;
            memcpy(expected, row + 26, HASH);
            seq++;
            events++;
            pos = (value + 8 + size) - buf;
        }
    }
    result = Py_BuildValue("nnLy#LLL", pos, at, seq, (const char *)expected, (Py_ssize_t)(at >= 0 ? HASH : 0), events,
                           batches, unnamed);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&tag);
    PyBuffer_Release(&heads);
    PyBuffer_Release(&prev);
    PyBuffer_Release(&nodes);
    PyBuffer_Release(&devices);
    return result;
}

static PyObject *
digests_are(PyObject *self, PyObject *args)
{
    Py_buffer data, expected;
    Py_ssize_t width, n, i;
    unsigned char hashed[HASH];
    int same = 1;

    if (!PyArg_ParseTuple(args, "y*ny*", &data, &width, &expected))
        return NULL;
    n = width > 0 ? data.len / width : 0;
    if (width <= 0 || data.len != n * width || expected.len != n * HASH)
        same = 0;
    for (i = 0; same && i < n; i++) {
        digest((const unsigned char *)data.buf + i * width, (size_t)width, hashed);
        same = memcmp(hashed, (const unsigned char *)expected.buf + i * HASH, HASH) == 0;
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&expected);
    return PyBool_FromLong(same);
}

static PyObject *
counts_up(PyObject *self, PyObject *args)
{
    Py_buffer data;
    long long first;
    Py_ssize_t k, n;

    if (!PyArg_ParseTuple(args, "y*L", &data, &first))
        return NULL;
    n = data.len / 8;
    for (k = 0; k < n; k++)
        if ((int64_t)be64((const unsigned char *)data.buf + 8 * k) != (int64_t)((uint64_t)first + (uint64_t)k))
            break;
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(k);
}

static PyObject *
node_row(PyObject *self, PyObject *args)
{
    Py_buffer row;
    Py_ssize_t pairs, i;
    unsigned char node[1 + 2 * HASH];
    PyObject *out;

    if (!PyArg_ParseTuple(args, "y*", &row))
        return NULL;
    pairs = row.len / (2 * HASH);
    out = PyBytes_FromStringAndSize(NULL, pairs * HASH);
    if (out != NULL) {
        unsigned char *to = (unsigned char *)PyBytes_AS_STRING(out);
        node[0] = 0x01;
        for (i = 0; i < pairs; i++) {
            memcpy(node + 1, (const unsigned char *)row.buf + i * 2 * HASH, 2 * HASH);
            digest(node, sizeof node, to + i * HASH);
        }
    }
    PyBuffer_Release(&row);
    return out;
}

/* The layout of ledger.tile_levels: a full tile is 2**TILE_HEIGHT hashes, a group 2**GROUP_HEIGHT of them, and
 * the upper rows the tile's rows from GROUP_HEIGHT up to its root's children (16 + 8 + 4 + 2 hashes). */
#define TILE_HEIGHT 8
#define GROUP_HEIGHT 4
#define GROUP_BYTES (HASH << GROUP_HEIGHT)
#define UPPER_BYTES (HASH * ((2 << (TILE_HEIGHT - GROUP_HEIGHT)) - 2))

static PyObject *
path_within(PyObject *self, PyObject *args)
{
    Py_ssize_t at;
    Py_buffer group, upper;
    PyObject *path = NULL;

    if (!PyArg_ParseTuple(args, "ny*y*", &at, &group, &upper))
        return NULL;
    if (group.len != GROUP_BYTES || upper.len != UPPER_BYTES || at < 0 || at >= (1 << TILE_HEIGHT)) {
        PyErr_SetString(PyExc_ValueError,
                        "a leaf offset in 0-255, a group of 16 hashes and a tile's 30 upper hashes are needed");
        goto done;
    }
    path = PyList_New(TILE_HEIGHT);
    if (path == NULL)
        goto done;
    {
        const unsigned char *g = (const unsigned char *)group.buf, *u = (const unsigned char *)upper.buf;
        Py_ssize_t inside = at & ((1 << GROUP_HEIGHT) - 1), row = 0;
        unsigned char work[HASH << (GROUP_HEIGHT - 1)], node[1 + 2 * HASH];
        int height;

        node[0] = 0x01;
        for (height = 0; height < GROUP_HEIGHT; height++) {
            /* The sibling subtree's 2**height stored hashes, reduced to its root. */
            Py_ssize_t first = ((inside >> height) ^ 1) << height, width = (Py_ssize_t)1 << height, i;
            PyObject *h;

            memcpy(work, g + first * HASH, (size_t)(width * HASH));
            for (; width > 1; width /= 2)
                for (i = 0; i < width / 2; i++) {
                    memcpy(node + 1, work + 2 * i * HASH, 2 * HASH);
                    digest(node, sizeof node, work + i * HASH);
                }
            h = PyBytes_FromStringAndSize((const char *)work, HASH);
            if (h == NULL) {
                Py_CLEAR(path);
                goto done;
            }
            PyList_SET_ITEM(path, height, h);
        }
        for (height = GROUP_HEIGHT; height < TILE_HEIGHT; height++) {
            Py_ssize_t sibling = row + ((at >> height) ^ 1) * HASH;
            PyObject *h = PyBytes_FromStringAndSize((const char *)u + sibling, HASH);

            if (h == NULL) {
                Py_CLEAR(path);
                goto done;
            }
            PyList_SET_ITEM(path, height, h);
            row += (Py_ssize_t)HASH << (TILE_HEIGHT - height);
        }
    }
done:
    PyBuffer_Release(&group);
    PyBuffer_Release(&upper);
    return path;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "walk(data, pos, tag, heads, at, seq, prev, nodes, devices) -> (pos, at, seq, prev, events, batches, unnamed): "
     "the ordinary links of the chains from data[pos:] on, up to the first row the Python walker must take."},
    {"digests_are", digests_are, METH_VARARGS,
     "digests_are(data, width, expected) -> bool: whether expected is the SHA-256 of each width bytes of data, in "
     "order."},
    {"counts_up", counts_up, METH_VARARGS,
     "counts_up(data, first) -> int: how many of the whole 8-byte big-endian integers of data count up from first "
     "(first, first + 1, ...) before the first that does not."},
    {"node_row", node_row, METH_VARARGS,
     "node_row(row) -> bytes: SHA-256(0x01 || left || right) of each whole pair of 32-byte hashes in row, "
     "concatenated (RFC 9162 node hashes; an odd last hash is left out)."},
    {"path_within", path_within, METH_VARARGS,
     "path_within(at, group, upper) -> list[bytes]: the 8 hashes of the inclusion proof of the leaf at offset at "
     "(0-255) of a full tile, from its aligned group of 16 stored hashes and the tile's upper rows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "traceability._chainwalk", "The inner loop of audit_bulk.ChainWalk, compiled.", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__chainwalk(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "DIGEST", DIGEST_NAME) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
