/* Native loop of the Rate-Control no fast path (nvr/playback/replay_wire.py).
 *
 * Writes the FU fragments of a stored access unit that is one H.264/H.265 NAL unit larger than
 * the MTU as "$"-framed RTP packets at the end of a bytearray: the first with the ONVIF replay
 * header extension (0xABAC) and the S bit, the last with the E bit and the RTP marker. Pure
 * serialising, no I/O. The caller names the NAL types it keeps for its own packetizer (key
 * frames, parameter sets). In Python this layout cost more than the socket write of the bytes;
 * the Python packetizer remains the reference, and the tests compare both byte for byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define ARGS 14
#define REPLAY_PROFILE 0xABAC
#define FU_START 0x80
#define FU_END 0x40
#define MAX_STEP (65535 - 31)   /* the largest fragment a "$" frame carries with the replay words */

static inline unsigned char *put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

static inline unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* "$" frame header and RTP header (no CSRC); returns where the packet continues. */
static inline unsigned char *rtp_head(unsigned char *p, uint32_t channel, uint32_t length,
                                      uint32_t byte0, uint32_t byte1, uint32_t seq, uint32_t ts,
                                      uint32_t ssrc)
{
    p[0] = 0x24;
    p[1] = (unsigned char)channel;
    p = put16(p + 2, length);
    p[0] = (unsigned char)byte0;
    p[1] = (unsigned char)byte1;
    p = put16(p + 2, seq & 0xFFFF);
    p = put32(p, ts);
    return put32(p, ssrc);
}

/* FU payload header (1 or 2 bytes) and FU header. */
static inline unsigned char *fu_head(unsigned char *p, Py_ssize_t hl, uint32_t prefix,
                                     uint32_t fu_header)
{
    if (hl == 2) {
        p = put16(p, prefix);
    } else {
        *p++ = (unsigned char)prefix;
    }
    *p++ = (unsigned char)fu_header;
    return p;
}

/* Lay the packets out at ``p`` (the bytearray is already sized). */
static void layout(unsigned char *p, const unsigned char *src, Py_ssize_t size, Py_ssize_t hl,
                   Py_ssize_t step, Py_ssize_t tail, uint32_t prefix, uint32_t t,
                   uint32_t channel, uint32_t pt, uint32_t seq, uint32_t ts, uint32_t ssrc,
                   unsigned long long ntp, uint32_t flags, uint32_t cseq)
{
    const Py_ssize_t fu = hl + 1;

    /* First fragment: X bit and the replay words (B.5), S bit. */
    p = rtp_head(p, channel, (uint32_t)(28 + fu + step), 0x90, pt, seq, ts, ssrc);
    p = put16(p, REPLAY_PROFILE);
    p = put16(p, 3);
    p = put32(p, (uint32_t)(ntp >> 32));
    p = put32(p, (uint32_t)ntp);
    p[0] = (unsigned char)flags;
    p[1] = (unsigned char)cseq;
    p = put16(p + 2, 0);
    p = fu_head(p, hl, prefix, t | FU_START);
    memcpy(p, src + hl, (size_t)step);
    p += step;

    /* Middle fragments: all alike but the sequence number. */
    uint32_t n = seq;
    for (Py_ssize_t pos = hl + step; pos < tail; pos += step) {
        n++;
        p = rtp_head(p, channel, (uint32_t)(12 + fu + step), 0x80, pt, n, ts, ssrc);
        p = fu_head(p, hl, prefix, t);
        memcpy(p, src + pos, (size_t)step);
        p += step;
    }

    /* Last fragment: marker, E bit. */
    n++;
    p = rtp_head(p, channel, (uint32_t)(12 + fu + size - tail), 0x80, pt | 0x80, n, ts, ssrc);
    p = fu_head(p, hl, prefix, t | FU_END);
    memcpy(p, src + tail, (size_t)(size - tail));
}

static const char *const names[ARGS - 2] = {
    "header_len", "mtu", "fu_type", "declined_types", "channel", "payload_type",
    "seq", "timestamp", "ssrc", "ntp", "flags", "cseq",
};

static const unsigned long long limits[ARGS - 2] = {
    2, 65535, 0x3F, ~0ull, 0xFF, 0x7F,
    0xFFFF, 0xFFFFFFFFull, 0xFFFFFFFFull, ~0ull, 0xFF, ~0ull,
};

PyDoc_STRVAR(fragment_into_doc,
"fragment_into(header_len, mtu, fu_type, declined_types, out, data, channel, payload_type,\n"
"              seq, timestamp, ssrc, ntp, flags, cseq) -> packets\n"
"\n"
"``data`` is a stored access unit (4-byte length prefixed NAL units). When it is one NAL unit\n"
"larger than ``mtu`` whose type (H.264 with a 1-byte NAL header, H.265 with 2) is not a bit\n"
"of ``declined_types``, append its FU packets (FU type ``fu_type``) to the bytearray ``out``\n"
"as interleaved frames on ``channel``, sequence numbers from ``seq``, the replay words (ntp,\n"
"flags, low byte of cseq) on the first, and return how many; else append nothing, return 0.");

static PyObject *fragment_into(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != ARGS) {
        PyErr_Format(PyExc_TypeError, "fragment_into() takes %d arguments (%zd given)", ARGS,
                     nargs);
        return NULL;
    }
    unsigned long long v[ARGS - 2];
    for (int i = 0; i < ARGS - 2; i++) {
        PyObject *arg = args[i < 4 ? i : i + 2];
        v[i] = PyLong_AsUnsignedLongLong(arg);
        if (v[i] == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        if (v[i] > limits[i]) {
            PyErr_Format(PyExc_ValueError, "fragment_into(): %s out of range", names[i]);
            return NULL;
        }
    }
    PyObject *out = args[4];
    if (!PyByteArray_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "fragment_into(): out must be a bytearray");
        return NULL;
    }
    const Py_ssize_t hl = (Py_ssize_t)v[0], mtu = (Py_ssize_t)v[1];
    const uint32_t fu_type = (uint32_t)v[2];
    const unsigned long long declined = v[3];
    const uint32_t channel = (uint32_t)v[4], pt = (uint32_t)v[5], seq = (uint32_t)v[6];
    const uint32_t ts = (uint32_t)v[7], ssrc = (uint32_t)v[8], flags = (uint32_t)v[10];
    const unsigned long long ntp = v[9];
    const uint32_t cseq = (uint32_t)(v[11] & 0xFF);
    const Py_ssize_t step = mtu - hl - 1;
    if (hl < 1 || step < 1 || step > MAX_STEP) {
        PyErr_SetString(PyExc_ValueError, "fragment_into(): no FU fragment fits this MTU");
        return NULL;
    }

    Py_buffer view;
    if (PyObject_GetBuffer(args[5], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    const Py_ssize_t size = view.len - 4; /* the NAL unit, if the access unit is just one */
    uint32_t t = 0, prefix = 0;
    int ours = size > mtu && size >= hl
        && (((uint32_t)data[0] << 24) | ((uint32_t)data[1] << 16) | ((uint32_t)data[2] << 8)
            | data[3]) == (unsigned long long)size
        && !(data[4] & 0x80);
    if (ours) {
        if (hl == 1) { /* RFC 6184: F and NRI of the NAL header, then the FU-A type */
            t = data[4] & 0x1F;
            prefix = (data[4] & 0xE0) | fu_type;
        } else { /* RFC 7798: F and LayerId's top bit, the FU type, then the second byte */
            t = (data[4] >> 1) & 0x3F;
            prefix = ((((uint32_t)data[4] & 0x81) | (fu_type << 1)) << 8) | data[5];
        }
        ours = !((declined >> t) & 1);
    }
    if (!ours) {
        PyBuffer_Release(&view);
        return PyLong_FromLong(0);
    }
    const unsigned char *nal = data + 4;
    const Py_ssize_t fu = hl + 1;
    const Py_ssize_t tail = hl + (size - hl - 1) / step * step; /* the last fragment's start */
    const Py_ssize_t count = (tail - hl) / step + 1;
    const Py_ssize_t wire = count * (16 + fu) + 16 + (size - hl);
    const Py_ssize_t start = PyByteArray_GET_SIZE(out);
    if (wire > PY_SSIZE_T_MAX - start) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    if (PyByteArray_Resize(out, start + wire) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(out) + start;
    layout(p, nal, size, hl, step, tail, prefix, t, channel, pt, seq, ts, ssrc, ntp, flags, cseq);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef methods[] = {
    {"fragment_into", (PyCFunction)(void (*)(void))fragment_into, METH_FASTCALL,
     fragment_into_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nvr.playback._wire",
    "Native layout of FU packets for the Rate-Control no fast path.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__wire(void)
{
    return PyModule_Create(&module);
}
