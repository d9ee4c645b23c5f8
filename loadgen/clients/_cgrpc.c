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
 *   Loop(channel, payloads, concurrency, timeout_s, backoff_s, metadata, offset, stride)
 *                                          a closed loop: N calls in flight on one completion queue,
 *                                          each sent again when it completes (perf_analyzer's async
 *                                          mode, perf_analyzer concurrency_worker.cc); Loop.poll
 *                                          hands the completions (end, latency on CLOCK_MONOTONIC,
 *                                          code, details) to loadgen/native_loop.py; Loop.stop
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    PyObject_HEAD
    grpc_channel *channel;
    grpc_slice method;
} Channel;

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

static PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.Channel",
    .tp_basicsize = sizeof(Channel), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Channel_init, .tp_dealloc = (destructor)Channel_dealloc,
    .tp_doc = "One gRPC channel on the C core."};

/* ---- what both senders share: metadata, deadlines, one call's state and its six ops ---- */

static void metadata_free(grpc_metadata **md, size_t *n) {
    for (size_t i = 0; i < *n; i++) {
        grpc_slice_unref((*md)[i].key);
        grpc_slice_unref((*md)[i].value);
    }
    PyMem_Free(*md);
    *md = NULL;
    *n = 0;
}

/* None or a sequence of (key, value) str pairs -> grpc_metadata[]; -1 with an exception on bad input */
static int metadata_parse(PyObject *obj, grpc_metadata **md, size_t *n) {
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

static int64_t now_ns(void) { /* CLOCK_MONOTONIC: the clock of Python's time.perf_counter_ns on Linux */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gpr_timespec after_ns(int64_t ns) {
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns > 0 ? ns : 0, GPR_TIMESPAN));
}

typedef struct {
    grpc_call *call;
    grpc_byte_buffer *sent, *received;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    int64_t t0;        /* Loop: when this slot's call started */
    int64_t resume_at; /* Loop: > 0 while the slot backs off after a connection-level failure */
    Py_ssize_t next;   /* Loop: index of the slot's next payload */
    int busy;          /* Loop: a call is in flight */
} Rpc;

/* Start one unary call with `body` (referenced, not copied); tag = `tag`. GIL not needed. */
static grpc_call_error rpc_start(Rpc *r, Channel *ch, grpc_completion_queue *cq, grpc_slice body,
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
static void rpc_finish(Rpc *r) {
    if (r->received != NULL) grpc_byte_buffer_destroy(r->received);
    grpc_byte_buffer_destroy(r->sent);
    grpc_metadata_array_destroy(&r->initial);
    grpc_metadata_array_destroy(&r->trailing);
    grpc_call_unref(r->call);
    r->call = NULL;
    r->received = r->sent = NULL;
}

/* a status's details as str (bytes that are not UTF-8 replaced); the slice stays the caller's */
static PyObject *details_text(grpc_slice details) {
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

static void drain_shutdown(grpc_completion_queue *cq) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
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

/* ---- Loop: a closed loop of N calls in flight on one completion queue, on its own thread ----
 *
 * A C thread (no Python, no GIL) owns the queue: it starts the N calls, takes each completion,
 * stamps it, appends it to `events` under `mu` and sends that slot's next call at once, so sending
 * and receiving never wait for Python. Loop.poll (any Python thread) waits on `cv` for events and
 * takes them all. stop(): the thread sends no more and exits when its calls in flight are done;
 * dropping the Loop also cancels those, then joins the thread. */

typedef struct {
    int64_t end_ns, latency_ns;
    grpc_status_code status;
    grpc_slice details;
} Event;

typedef struct {
    PyObject_HEAD
    Channel *owner;
    grpc_completion_queue *cq;
    grpc_metadata *metadata;
    size_t n_metadata;
    grpc_slice *payloads;
    Py_ssize_t n_payloads;
    Rpc *slots;
    int n_slots;
    double timeout_s;
    int64_t backoff_ns;
    /* shared with the loop thread: under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    Event *events;
    size_t n_events, cap_events;
    long sent;
    int inflight;
    int finished;
    /* set by Python, read by the loop thread */
    volatile int stopping;
    volatile int cancelling;
    pthread_t thread;
    int running; /* the thread was started and not joined */
} Loop;

static int backs_off(grpc_status_code s) {
    return s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_DEADLINE_EXCEEDED || s == GRPC_STATUS_CANCELLED;
}

static void loop_event(Loop *self, int64_t end, int64_t latency, grpc_status_code status, grpc_slice details,
                       int sent, int inflight_delta) {
    pthread_mutex_lock(&self->mu);
    if (self->n_events == self->cap_events) {
        size_t cap = self->cap_events ? 2 * self->cap_events : 1024;
        Event *grown = realloc(self->events, cap * sizeof(Event));
        if (grown == NULL) abort(); /* out of memory in the load generator: nothing sensible to do */
        self->events = grown;
        self->cap_events = cap;
    }
    Event *e = &self->events[self->n_events++];
    e->end_ns = end;
    e->latency_ns = latency;
    e->status = status;
    e->details = details;
    self->sent += sent;
    self->inflight += inflight_delta;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

/* start slot i's next call at `t` (loop thread); a call the core refuses is an INTERNAL event and backs off */
static void loop_send(Loop *self, int i, int64_t t) {
    Rpc *r = &self->slots[i];
    grpc_slice body = self->payloads[r->next % self->n_payloads];
    r->next++;
    r->t0 = t;
    r->resume_at = 0;
    if (rpc_start(r, self->owner, self->cq, body, self->metadata, self->n_metadata, self->timeout_s, r)
        == GRPC_CALL_OK) {
        r->busy = 1;
        pthread_mutex_lock(&self->mu);
        self->sent++;
        self->inflight++;
        pthread_mutex_unlock(&self->mu);
        return;
    }
    rpc_finish(r);
    grpc_slice_unref(r->details);
    loop_event(self, t, 0, GRPC_STATUS_INTERNAL,
               grpc_slice_from_static_string("grpc_call_start_batch refused the call"), 1, 0);
    r->resume_at = t + self->backoff_ns;
}

#define LOOP_TICK_NS 10000000 /* the loop thread looks at stop/cancel at least this often */

static void *loop_main(void *arg) {
    Loop *self = (Loop *)arg;
    int busy = 0, cancelled = 0;
    int64_t t = now_ns();
    for (int i = 0; i < self->n_slots && !self->stopping; i++) {
        loop_send(self, i, t);
        busy += self->slots[i].busy;
    }
    for (;;) {
        int64_t wake = t + LOOP_TICK_NS;
        for (int i = 0; i < self->n_slots; i++) { /* slots backing off: send again when due */
            Rpc *r = &self->slots[i];
            if (r->busy || r->resume_at == 0) continue;
            if (self->stopping) r->resume_at = 0;
            else if (r->resume_at <= t) {
                loop_send(self, i, t);
                busy += r->busy;
            } else if (r->resume_at < wake) wake = r->resume_at;
        }
        if (self->cancelling && !cancelled) {
            cancelled = 1;
            for (int i = 0; i < self->n_slots; i++)
                if (self->slots[i].busy) grpc_call_cancel(self->slots[i].call, NULL);
        }
        if (busy == 0 && self->stopping) break;
        grpc_event ev = grpc_completion_queue_next(self->cq, after_ns(wake - now_ns()), NULL);
        t = now_ns();
        if (ev.type == GRPC_QUEUE_TIMEOUT) continue;
        if (ev.type != GRPC_OP_COMPLETE) break;
        Rpc *r = (Rpc *)ev.tag;
        grpc_status_code status = ev.success ? r->status : GRPC_STATUS_INTERNAL;
        grpc_slice details = r->details;
        rpc_finish(r);
        r->busy = 0;
        busy--;
        loop_event(self, t, t - r->t0, status, details, 0, -1);
        if (self->stopping) continue;
        if (backs_off(status)) r->resume_at = t + self->backoff_ns;
        else {
            loop_send(self, (int)(r - self->slots), t);
            busy += r->busy;
        }
    }
    pthread_mutex_lock(&self->mu);
    self->finished = 1;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

static int Loop_init(Loop *self, PyObject *args, PyObject *kwargs) {
    PyObject *owner, *payloads, *metadata = Py_None;
    int concurrency;
    Py_ssize_t offset = 0, stride = 1;
    double timeout_s, backoff_s;
    static char *names[] = {"channel", "payloads", "concurrency", "timeout_s", "backoff_s", "metadata",
                            "offset", "stride", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!Oidd|Onn", names, &ChannelType, &owner, &payloads,
                                     &concurrency, &timeout_s, &backoff_s, &metadata, &offset, &stride))
        return -1;
    if (self->cq != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Loop already initialised");
        return -1;
    }
    if (concurrency < 1) {
        PyErr_SetString(PyExc_ValueError, "concurrency must be >= 1");
        return -1;
    }
    PyObject *seq = PySequence_Fast(payloads, "payloads must be a sequence of bytes");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "payloads must not be empty");
        return -1;
    }
    self->payloads = PyMem_Calloc((size_t)n, sizeof(grpc_slice));
    for (Py_ssize_t i = 0; i < n; i++) {
        char *buf;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &buf, &len) < 0) {
            for (Py_ssize_t j = 0; j < i; j++) grpc_slice_unref(self->payloads[j]);
            PyMem_Free(self->payloads);
            self->payloads = NULL;
            Py_DECREF(seq);
            return -1;
        }
        self->payloads[i] = grpc_slice_from_copied_buffer(buf, (size_t)len);
    }
    Py_DECREF(seq);
    self->n_payloads = n;
    if (metadata_parse(metadata, &self->metadata, &self->n_metadata) < 0) return -1;
    self->slots = PyMem_Calloc((size_t)concurrency, sizeof(Rpc));
    for (int i = 0; i < concurrency; i++) self->slots[i].next = offset + (Py_ssize_t)i * stride;
    self->n_slots = concurrency;
    self->timeout_s = timeout_s;
    self->backoff_ns = (int64_t)(backoff_s * 1e9);
    Py_INCREF(owner);
    self->owner = (Channel *)owner;
    pthread_mutex_init(&self->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cv, &attr);
    pthread_condattr_destroy(&attr);
    self->cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&self->thread, NULL, loop_main, self) != 0) {
        PyErr_SetString(PyExc_OSError, "could not start the loop thread");
        return -1;
    }
    self->running = 1;
    return 0;
}

/* poll(max_wait_s) -> (events, sent): waits up to max_wait_s for completions and takes them all:
 * a list of (end_ns, latency_ns, code, details|None), code 0 = OK; sent: calls started since the
 * last poll. */
static PyObject *Loop_poll(Loop *self, PyObject *args) {
    double max_wait_s;
    if (!PyArg_ParseTuple(args, "d", &max_wait_s)) return NULL;
    if (self->cq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Loop not initialised");
        return NULL;
    }
    Event *events;
    size_t n_events;
    long sent;
    Py_BEGIN_ALLOW_THREADS
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + (int64_t)(max_wait_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&self->mu);
    while (self->n_events == 0 && !self->finished)
        if (pthread_cond_timedwait(&self->cv, &self->mu, &until) != 0) break;
    events = self->events;
    n_events = self->n_events;
    sent = self->sent;
    self->events = NULL;
    self->n_events = self->cap_events = 0;
    self->sent = 0;
    pthread_mutex_unlock(&self->mu);
    Py_END_ALLOW_THREADS
    PyObject *list = PyList_New((Py_ssize_t)n_events);
    for (size_t i = 0; list != NULL && i < n_events; i++) {
        Event *e = &events[i];
        PyObject *item;
        if (e->status == GRPC_STATUS_OK) {
            item = Py_BuildValue("(LLiO)", (long long)e->end_ns, (long long)e->latency_ns, 0, Py_None);
        } else {
            PyObject *text = details_text(e->details);
            item = text == NULL ? NULL : Py_BuildValue("(LLiN)", (long long)e->end_ns, (long long)e->latency_ns,
                                                       (int)e->status, text);
        }
        if (item == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    for (size_t i = 0; i < n_events; i++) grpc_slice_unref(events[i].details);
    free(events);
    if (list == NULL) return NULL;
    return Py_BuildValue("(Nl)", list, sent);
}

static PyObject *Loop_stop(Loop *self, PyObject *unused) {
    self->stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *Loop_inflight(Loop *self, void *unused) {
    pthread_mutex_lock(&self->mu);
    int n = self->inflight;
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromLong(n);
}

static PyObject *Loop_finished(Loop *self, void *unused) {
    pthread_mutex_lock(&self->mu);
    int done = self->finished;
    pthread_mutex_unlock(&self->mu);
    return PyBool_FromLong(done);
}

static void Loop_dealloc(Loop *self) {
    if (self->running) {
        self->stopping = 1;
        self->cancelling = 1; /* the loop thread cancels its calls in flight, drains them and exits */
        Py_BEGIN_ALLOW_THREADS
        pthread_join(self->thread, NULL);
        Py_END_ALLOW_THREADS
        self->running = 0;
    }
    if (self->cq != NULL) {
        drain_shutdown(self->cq);
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cv);
    }
    for (size_t i = 0; i < self->n_events; i++) grpc_slice_unref(self->events[i].details);
    free(self->events);
    for (Py_ssize_t i = 0; i < self->n_payloads; i++) grpc_slice_unref(self->payloads[i]);
    PyMem_Free(self->payloads);
    PyMem_Free(self->slots);
    metadata_free(&self->metadata, &self->n_metadata);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Loop_methods[] = {
    {"poll", (PyCFunction)Loop_poll, METH_VARARGS,
     "poll(max_wait_s) -> (events, sent): the completions since the last poll (waits, GIL released)."},
    {"stop", (PyCFunction)Loop_stop, METH_NOARGS, "Send no more; calls in flight still complete."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Loop_getset[] = {
    {"inflight", (getter)Loop_inflight, NULL, "calls in flight now", NULL},
    {"finished", (getter)Loop_finished, NULL, "the loop thread has stopped (after stop(), calls done)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.Loop",
    .tp_basicsize = sizeof(Loop), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Loop_init, .tp_dealloc = (destructor)Loop_dealloc,
    .tp_methods = Loop_methods, .tp_getset = Loop_getset,
    .tp_doc = "A closed loop of N calls in flight on one completion queue, on its own C thread."};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cgrpc",
                                    "saturate's native gRPC sender (see loadgen/clients/_cgrpc.c).", -1, NULL,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cgrpc(void) {
    if (PyType_Ready(&ChannelType) < 0 || PyType_Ready(&CallerType) < 0 || PyType_Ready(&LoopType) < 0)
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
    PyModule_AddStringConstant(m, "GRPC_VERSION", grpc_version_string());
    return m;
}
