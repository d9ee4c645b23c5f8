/* saturate's native gRPC sender: one blocking unary call on gRPC's C core, the GIL released.
 *
 * Built by tools/build_native.sh (make native) against Debian's libgrpc-dev into
 * loadgen/clients/_cgrpc<EXT_SUFFIX>; loadgen/clients/native_grpc.py wraps it and says when it is
 * missing. Why: grpcio's Python sync call path (its Cython call state, operation tuples, exception
 * objects) costs ~100 us of client CPU per request on a 2-core machine, more than perf_analyzer's
 * whole process spends; the same call made here goes straight to the C core, as perf_analyzer's own
 * C++ client does (perf_analyzer client_backend/triton/triton_client_backend.cc over grpc++).
 *
 * The call is the one grpcio makes for a unary-unary RPC (grpc python
 * src/python/grpcio/grpc/_channel.py, _UnaryUnaryMultiCallable._blocking): one batch of six ops
 * (send initial metadata, message, close; receive initial metadata, message, status) on a
 * completion queue of the calling thread, plucked until done. Nothing is parsed: the answer's bytes
 * are dropped, the status and its details are returned.
 *
 *   Channel(target, method)                one HTTP/2 channel (no retries, no message size limit)
 *   Caller(channel, metadata)              one thread's completion queue and request metadata
 *   Caller.infer(payload, timeout_s)       None when OK, else (status code, details); timeout 0 = none
 *   Loop, SyncLoop, OpenLoop               the closed loops (one completion queue, or one thread
 *                                          per call) and the open loop on their own C threads
 *                                          (loadgen/clients/_cgrpc_loops.c, _cgrpc_sync.c, _cgrpc_open.c)
 *
 * This unit also holds what the loops share: metadata and payloads, one call's ops, and the sink
 * through which their threads hand completions to Python (declared in _cgrpc.h).
 */
#include "_cgrpc.h"

#include <grpc/grpc_security.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    PyObject_HEAD
    Channel *owner;
    grpc_completion_queue *cq;
    grpc_metadata *metadata;
    size_t n_metadata;
} Caller;

static int Channel_init(Channel *self, PyObject *args, PyObject *kwargs) {
    const char *target, *method;
    static char *names[] = {"target", "method", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ss", names, &target, &method)) return -1;
    if (self->channel != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Channel already initialised");
        return -1;
    }
    grpc_arg arg[3];
    arg[0].type = GRPC_ARG_INTEGER; arg[0].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH; arg[0].value.integer = -1;
    arg[1].type = GRPC_ARG_INTEGER; arg[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH; arg[1].value.integer = -1;
    /* no transparent retries: a load generator must see (and count) every failure */
    arg[2].type = GRPC_ARG_INTEGER; arg[2].key = GRPC_ARG_ENABLE_RETRIES; arg[2].value.integer = 0;
    grpc_channel_args channel_args = {3, arg};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    self->channel = grpc_channel_create(target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    self->method = grpc_slice_from_copied_string(method);
    return 0;
}

/* No close(): every Caller holds its Channel, so the channel is destroyed when the last thread's
 * caller is gone, never under a call in flight. */
static void Channel_dealloc(Channel *self) {
    if (self->channel != NULL) grpc_channel_destroy(self->channel);
    grpc_slice_unref(self->method);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.Channel",
    .tp_basicsize = sizeof(Channel), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Channel_init, .tp_dealloc = (destructor)Channel_dealloc,
    .tp_doc = "One gRPC channel on the C core."};

/* ---- what both senders share: metadata, deadlines, one call's state and its six ops ---- */

void metadata_free(grpc_metadata **md, size_t *n) {
    for (size_t i = 0; i < *n; i++) {
        grpc_slice_unref((*md)[i].key);
        grpc_slice_unref((*md)[i].value);
    }
    PyMem_Free(*md);
    *md = NULL;
    *n = 0;
}

/* None or a sequence of (key, value) str pairs -> grpc_metadata[]; -1 with an exception on bad input */
int metadata_parse(PyObject *obj, grpc_metadata **md, size_t *n) {
    *md = NULL;
    *n = 0;
    if (obj == Py_None) return 0;
    PyObject *seq = PySequence_Fast(obj, "metadata must be a sequence of (key, value) pairs");
    if (seq == NULL) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    *md = PyMem_Calloc(count > 0 ? (size_t)count : 1, sizeof(grpc_metadata));
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *key, *value;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss", &key, &value)) {
            Py_DECREF(seq);
            metadata_free(md, n);
            return -1;
        }
        (*md)[i].key = grpc_slice_from_copied_string(key);
        (*md)[i].value = grpc_slice_from_copied_string(value);
        *n = (size_t)i + 1;
    }
    Py_DECREF(seq);
    return 0;
}

int64_t now_ns(void) { /* CLOCK_MONOTONIC: the clock of Python's time.perf_counter_ns on Linux */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

gpr_timespec after_ns(int64_t ns) {
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns > 0 ? ns : 0, GPR_TIMESPAN));
}


/* Start one unary call with `body` (referenced, not copied); tag = `tag`. GIL not needed. */
grpc_call_error rpc_start(Rpc *r, Channel *ch, grpc_completion_queue *cq, grpc_slice body,
                                 grpc_metadata *md, size_t n_md, double timeout_s, void *tag) {
    r->sent = grpc_raw_byte_buffer_create(&body, 1);
    r->received = NULL;
    r->status = GRPC_STATUS_UNKNOWN;
    r->details = grpc_empty_slice();
    gpr_timespec deadline = timeout_s > 0 ? after_ns((int64_t)(timeout_s * 1e9)) : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    r->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, ch->method, NULL, deadline, NULL);
    grpc_metadata_array_init(&r->initial);
    grpc_metadata_array_init(&r->trailing);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = r->sent;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &r->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &r->received;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &r->trailing;
    ops[5].data.recv_status_on_client.status = &r->status;
    ops[5].data.recv_status_on_client.status_details = &r->details;
    return grpc_call_start_batch(r->call, ops, 6, tag, NULL);
}

/* Release a finished (or never started) call; the status details stay for the caller to unref. */
void rpc_finish(Rpc *r) {
    if (r->received != NULL) grpc_byte_buffer_destroy(r->received);
    grpc_byte_buffer_destroy(r->sent);
    grpc_metadata_array_destroy(&r->initial);
    grpc_metadata_array_destroy(&r->trailing);
    grpc_call_unref(r->call);
    r->call = NULL;
    r->received = r->sent = NULL;
}

/* a status's details as str (bytes that are not UTF-8 replaced); the slice stays the caller's */
PyObject *details_text(grpc_slice details) {
    return PyUnicode_DecodeUTF8((const char *)GRPC_SLICE_START_PTR(details), (Py_ssize_t)GRPC_SLICE_LENGTH(details),
                                "replace");
}

/* (code, details) for a failed call, None for OK; takes the details slice */
static PyObject *status_value(grpc_status_code status, grpc_slice details) {
    if (status == GRPC_STATUS_OK) {
        grpc_slice_unref(details);
        Py_RETURN_NONE;
    }
    PyObject *text = details_text(details);
    grpc_slice_unref(details);
    if (text == NULL) return NULL;
    PyObject *result = Py_BuildValue("(iN)", (int)status, text);
    return result;
}

void drain_shutdown(grpc_completion_queue *cq) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

/* ---- payloads: a sequence of bytes, copied once into slices the calls reference ---- */

int payloads_parse(PyObject *obj, grpc_slice **out, Py_ssize_t *n) {
    *out = NULL;
    *n = 0;
    PyObject *seq = PySequence_Fast(obj, "payloads must be a sequence of bytes");
    if (seq == NULL) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    if (count < 1) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "payloads must not be empty");
        return -1;
    }
    *out = PyMem_Calloc((size_t)count, sizeof(grpc_slice));
    for (Py_ssize_t i = 0; i < count; i++) {
        char *buf;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &buf, &len) < 0) {
            Py_DECREF(seq);
            payloads_free(out, n);
            return -1;
        }
        (*out)[i] = grpc_slice_from_copied_buffer(buf, (size_t)len);
        *n = i + 1;
    }
    Py_DECREF(seq);
    return 0;
}

void payloads_free(grpc_slice **payloads, Py_ssize_t *n) {
    for (Py_ssize_t i = 0; i < *n; i++) grpc_slice_unref((*payloads)[i]);
    PyMem_Free(*payloads);
    *payloads = NULL;
    *n = 0;
}

/* ---- the sink: events from a loop's C threads, taken by Python in batches ---- */

void monotonic_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

void sink_init(Sink *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    monotonic_cond_init(&s->cv);
}

void sink_destroy(Sink *s) {
    for (size_t i = 0; i < s->n_events; i++) grpc_slice_unref(s->events[i].details);
    free(s->events);
    s->events = NULL;
    s->n_events = s->cap_events = 0;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

void sink_push_locked(Sink *s, Event e) {
    if (s->n_events == s->cap_events) {
        size_t cap = s->cap_events ? 2 * s->cap_events : 1024;
        Event *grown = realloc(s->events, cap * sizeof(Event));
        if (grown == NULL) abort(); /* out of memory in the load generator: nothing sensible to do */
        s->events = grown;
        s->cap_events = cap;
    }
    s->events[s->n_events++] = e;
    if (s->n_events == SINK_BATCH) pthread_cond_signal(&s->cv);
}

void sink_finish(Sink *s) {
    pthread_mutex_lock(&s->mu);
    s->finished = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static PyObject *event_value(const Event *e, int open_loop) {
    PyObject *text = Py_None;
    if (e->status != GRPC_STATUS_OK) {
        text = details_text(e->details);
        if (text == NULL) return NULL;
    } else Py_INCREF(text);
    if (!open_loop)
        return Py_BuildValue("(LLiN)", (long long)e->end_ns, (long long)e->latency_ns, (int)e->status, text);
    return Py_BuildValue("(LLLiiN)", (long long)e->end_ns, (long long)e->latency_ns, (long long)e->service_ns,
                         e->kind, (int)e->status, text);
}

/* Wait until a batch is ready (SINK_BATCH events, or the loop finished), at most max_wait_s (GIL
 * released). */
void sink_wait(Sink *s, double max_wait_s) {
    Py_BEGIN_ALLOW_THREADS
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + (int64_t)(max_wait_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&s->mu);
    while (s->n_events < SINK_BATCH && !s->finished)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0) break;
    pthread_mutex_unlock(&s->mu);
    Py_END_ALLOW_THREADS
}

/* Take every event now (never waits): (events, sent). An event is (end_ns, latency_ns, code,
 * details|None), or for an open loop (end_ns, latency_ns, service_ns, kind, code, details|None);
 * code 0 = OK; sent: calls started since the last take. */
PyObject *sink_take(Sink *s, int open_loop) {
    pthread_mutex_lock(&s->mu);
    Event *events = s->events;
    size_t n_events = s->n_events;
    long sent = s->sent;
    s->events = NULL;
    s->n_events = s->cap_events = 0;
    s->sent = 0;
    pthread_mutex_unlock(&s->mu);
    PyObject *list = PyList_New((Py_ssize_t)n_events);
    for (size_t i = 0; list != NULL && i < n_events; i++) {
        PyObject *item = event_value(&events[i], open_loop);
        if (item == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    for (size_t i = 0; i < n_events; i++) grpc_slice_unref(events[i].details);
    free(events);
    if (list == NULL) return NULL;
    return Py_BuildValue("(Nl)", list, sent);
}

PyObject *sink_inflight(Sink *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->inflight;
    pthread_mutex_unlock(&s->mu);
    return PyLong_FromLong(n);
}

PyObject *sink_finished(Sink *s) {
    pthread_mutex_lock(&s->mu);
    int done = s->finished;
    pthread_mutex_unlock(&s->mu);
    return PyBool_FromLong(done);
}

/* ---- Caller: one thread's blocking calls ---- */

static int Caller_init(Caller *self, PyObject *args, PyObject *kwargs) {
    PyObject *owner, *metadata = Py_None;
    static char *names[] = {"channel", "metadata", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|O", names, &ChannelType, &owner, &metadata)) return -1;
    if (self->cq != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Caller already initialised");
        return -1;
    }
    if (metadata_parse(metadata, &self->metadata, &self->n_metadata) < 0) return -1;
    Py_INCREF(owner);
    self->owner = (Channel *)owner;
    self->cq = grpc_completion_queue_create_for_pluck(NULL);
    return 0;
}

static void Caller_dealloc(Caller *self) {
    if (self->cq != NULL) {
        grpc_completion_queue_shutdown(self->cq);
        while (grpc_completion_queue_pluck(self->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
               != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(self->cq);
    }
    metadata_free(&self->metadata, &self->n_metadata);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Caller_infer(Caller *self, PyObject *args) {
    Py_buffer payload;
    double timeout_s;
    if (!PyArg_ParseTuple(args, "y*d", &payload, &timeout_s)) return NULL;
    if (self->cq == NULL || self->owner->channel == NULL) {
        PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_RuntimeError, "Caller or Channel not initialised");
        return NULL;
    }
    Rpc r;
    grpc_call_error started;
    grpc_event done;
    done.success = 0;
    Py_BEGIN_ALLOW_THREADS
    grpc_slice body = grpc_slice_from_copied_buffer(payload.buf, (size_t)payload.len);
    started = rpc_start(&r, self->owner, self->cq, body, self->metadata, self->n_metadata, timeout_s, &r);
    grpc_slice_unref(body);
    if (started == GRPC_CALL_OK)
        done = grpc_completion_queue_pluck(self->cq, &r, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    rpc_finish(&r);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&payload);
    if (started != GRPC_CALL_OK || !done.success) {
        grpc_slice_unref(r.details);
        return Py_BuildValue("(is)", (int)GRPC_STATUS_INTERNAL,
                             started != GRPC_CALL_OK ? "grpc_call_start_batch refused the call"
                                                     : "the call's batch did not complete");
    }
    return status_value(r.status, r.details);
}

static PyMethodDef Caller_methods[] = {
    {"infer", (PyCFunction)Caller_infer, METH_VARARGS,
     "infer(payload, timeout_s) -> None | (code, details): one blocking unary call, GIL released."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.Caller",
    .tp_basicsize = sizeof(Caller), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Caller_init, .tp_dealloc = (destructor)Caller_dealloc,
    .tp_methods = Caller_methods, .tp_doc = "One thread's blocking calls on a Channel."};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cgrpc",
                                    "saturate's native gRPC sender (see loadgen/clients/_cgrpc.c).", -1, NULL,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cgrpc(void) {
    if (PyType_Ready(&ChannelType) < 0 || PyType_Ready(&CallerType) < 0 || PyType_Ready(&LoopType) < 0
        || PyType_Ready(&OpenLoopType) < 0 || PyType_Ready(&SyncLoopType) < 0)
        return NULL;
    grpc_init();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ChannelType);
    PyModule_AddObject(m, "Channel", (PyObject *)&ChannelType);
    Py_INCREF(&CallerType);
    PyModule_AddObject(m, "Caller", (PyObject *)&CallerType);
    Py_INCREF(&LoopType);
    PyModule_AddObject(m, "Loop", (PyObject *)&LoopType);
    Py_INCREF(&OpenLoopType);
    PyModule_AddObject(m, "OpenLoop", (PyObject *)&OpenLoopType);
    Py_INCREF(&SyncLoopType);
    PyModule_AddObject(m, "SyncLoop", (PyObject *)&SyncLoopType);
    PyModule_AddStringConstant(m, "GRPC_VERSION", grpc_version_string());
    return m;
}
