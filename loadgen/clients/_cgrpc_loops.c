/* The native sender's loops: gRPC calls made and completed on C threads that never take the GIL,
 * handed to Python in batches through a Sink (loadgen/clients/_cgrpc.h). This unit holds what both
 * loops are made of (Common, the slot Pool, the methods Python calls on either) and the closed loop;
 * the open loop is loadgen/clients/_cgrpc_open.c.
 *
 *   Loop(channel, payloads, concurrency, timeout_s, backoff_s, backoff_codes, metadata, offset, stride)
 *       a closed loop (loadgen/native_loop.py NativeClosedLoop): N calls in flight on one completion
 *       queue, each sent again when it completes: perf_analyzer's async concurrency mode
 *       (perf_analyzer concurrency_worker.cc). One thread owns the queue: it starts the N calls, takes
 *       each completion, stamps it (CLOCK_MONOTONIC, the clock of time.perf_counter_ns) and sends that
 *       slot's next call at once. After a failure whose status is one of backoff_codes (the
 *       connection-level ones, loadgen/drivers.py BACKOFF_CODES) a slot waits backoff_s.
 *
 * Both loops: wait(max_wait_s) waits for a batch, take() takes the events; stop() sends no more, the
 * calls in flight still complete; dropping the object cancels those, then joins the threads. */
#include "_cgrpc.h"

#include <stdlib.h>
#include <string.h>

int common_init(Common *c, PyObject *owner, PyObject *payloads, PyObject *metadata, double timeout_s) {
    if (c->cq != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "loop already initialised");
        return -1;
    }
    if (payloads_parse(payloads, &c->payloads, &c->n_payloads) < 0) return -1;
    if (metadata_parse(metadata, &c->metadata, &c->n_metadata) < 0) {
        payloads_free(&c->payloads, &c->n_payloads);
        return -1;
    }
    c->timeout_s = timeout_s;
    Py_INCREF(owner);
    c->owner = (Channel *)owner;
    sink_init(&c->sink);
    c->cq = grpc_completion_queue_create_for_next(NULL);
    return 0;
}

void common_free(Common *c) {
    if (c->cq != NULL) {
        drain_shutdown(c->cq);
        sink_destroy(&c->sink);
        c->cq = NULL;
    }
    payloads_free(&c->payloads, &c->n_payloads);
    metadata_free(&c->metadata, &c->n_metadata);
    Py_CLEAR(c->owner);
}

grpc_call_error common_start(Common *c, Rpc *r, grpc_slice body) {
    return rpc_start(r, c->owner, c->cq, body, c->metadata, c->n_metadata, c->timeout_s, r);
}

Rpc *common_next(Common *c, int64_t wake_ns, int64_t *t, grpc_status_code *status, grpc_slice *details,
                 int *stop) {
    grpc_event ev = grpc_completion_queue_next(c->cq, after_ns(wake_ns - now_ns()), NULL);
    *t = now_ns();
    *stop = ev.type == GRPC_QUEUE_SHUTDOWN;
    if (ev.type != GRPC_OP_COMPLETE) return NULL;
    Rpc *r = (Rpc *)ev.tag;
    *status = ev.success ? r->status : GRPC_STATUS_INTERNAL;
    *details = r->details;
    rpc_finish(r);
    r->busy = 0;
    return r;
}

Event refused(int64_t t) {
    Event e = {t, 0, 0, GRPC_STATUS_INTERNAL, EV_DONE,
               grpc_slice_from_static_string("grpc_call_start_batch refused the call")};
    return e;
}

Rpc *pool_add(Pool *p) {
    if (p->n_slots == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        Rpc **slots = realloc(p->slots, (size_t)cap * sizeof(Rpc *));
        Rpc **idle = slots == NULL ? NULL : realloc(p->idle, (size_t)cap * sizeof(Rpc *));
        if (idle == NULL) abort(); /* out of memory in the load generator: nothing sensible to do */
        p->slots = slots;
        p->idle = idle;
        p->cap = cap;
    }
    Rpc *r = calloc(1, sizeof(Rpc));
    if (r == NULL) abort();
    r->index = p->n_slots;
    p->slots[p->n_slots++] = r;
    return r;
}

Rpc *pool_take(Pool *p) { return p->n_idle > 0 ? p->idle[--p->n_idle] : pool_add(p); }

void pool_put(Pool *p, Rpc *r) { p->idle[p->n_idle++] = r; }

void pool_cancel_busy(Pool *p) {
    for (int i = 0; i < p->n_slots; i++)
        if (p->slots[i]->busy) grpc_call_cancel(p->slots[i]->call, NULL);
}

void pool_free(Pool *p) {
    for (int i = 0; i < p->n_slots; i++) free(p->slots[i]);
    free(p->slots);
    free(p->idle);
    memset(p, 0, sizeof *p);
}

int start_thread(pthread_t *thread, void *(*main)(void *), void *arg) {
    if (pthread_create(thread, NULL, main, arg) == 0) return 0;
    PyErr_SetString(PyExc_OSError, "could not start a loop thread");
    return -1;
}

/* ---- what Python calls on either loop (both start with Common after the object head) ---- */

PyObject *any_wait(AnyLoop *self, PyObject *args) {
    double max_wait_s;
    if (!PyArg_ParseTuple(args, "d", &max_wait_s)) return NULL;
    if (self->c.cq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "loop not initialised");
        return NULL;
    }
    sink_wait(&self->c.sink, max_wait_s);
    Py_RETURN_NONE;
}

PyObject *take_events(AnyLoop *self, int open_loop) {
    if (self->c.cq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "loop not initialised");
        return NULL;
    }
    return sink_take(&self->c.sink, open_loop);
}

static PyObject *any_inflight(AnyLoop *self, void *unused) { return sink_inflight(&self->c.sink); }

static PyObject *any_finished(AnyLoop *self, void *unused) { return sink_finished(&self->c.sink); }

PyGetSetDef any_getset[] = {
    {"inflight", (getter)any_inflight, NULL, "calls in flight now", NULL},
    {"finished", (getter)any_finished, NULL, "the loop's threads have stopped (after stop(), calls done)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

/* ---- Loop: the closed loop ---- */

typedef struct {
    PyObject_HEAD
    Common c;
    Pool pool; /* one slot per call in flight, made at the start */
    int64_t backoff_ns;
    uint32_t backoff_mask; /* bit s set: status s backs off (loadgen/drivers.py BACKOFF_CODES) */
    pthread_t thread;
    int running; /* the thread was started and not joined */
} Loop;

int code_in(uint32_t mask, grpc_status_code s) { return s >= 0 && s < 32 && (mask >> s) & 1u; }

int64_t code_mask(PyObject *codes) {
    PyObject *seq = PySequence_Fast(codes, "backoff_codes must be a sequence of int");
    if (seq == NULL) return -1;
    uint32_t mask = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        long code = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (code < 0 || code > 31) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a backoff code must lie in 0..31");
            return -1;
        }
        mask |= 1u << code;
    }
    Py_DECREF(seq);
    return mask;
}

int closed_send(Common *c, Rpc *r, grpc_completion_queue *cq, int64_t t) {
    grpc_slice body = c->payloads[r->next % c->n_payloads];
    r->next++;
    r->t0 = t;
    int ok = rpc_start(r, c->owner, cq, body, c->metadata, c->n_metadata, c->timeout_s, r) == GRPC_CALL_OK;
    if (!ok) {
        rpc_finish(r);
        grpc_slice_unref(r->details);
    }
    pthread_mutex_lock(&c->sink.mu);
    c->sink.sent++;
    if (ok) c->sink.inflight++;
    else sink_push_locked(&c->sink, refused(t));
    pthread_mutex_unlock(&c->sink.mu);
    return ok;
}

/* start slot i's next call at `t` (loop thread); a call the core refuses is an INTERNAL event and backs off */
static void loop_send(Loop *self, int i, int64_t t) {
    Rpc *r = self->pool.slots[i];
    r->busy = closed_send(&self->c, r, self->c.cq, t);
    r->resume_at = r->busy ? 0 : t + self->backoff_ns;
}

static void *loop_main(void *arg) {
    Loop *self = (Loop *)arg;
    int busy = 0, cancelled = 0, stop = 0;
    int64_t t = now_ns();
    for (int i = 0; i < self->pool.n_slots && !self->c.stopping; i++) {
        loop_send(self, i, t);
        busy += self->pool.slots[i]->busy;
    }
    while (!stop) {
        int64_t wake = t + LOOP_TICK_NS;
        for (int i = 0; i < self->pool.n_slots; i++) { /* slots backing off: send again when due */
            Rpc *r = self->pool.slots[i];
            if (r->busy || r->resume_at == 0) continue;
            if (self->c.stopping) r->resume_at = 0;
            else if (r->resume_at <= t) {
                loop_send(self, i, t);
                busy += r->busy;
            } else if (r->resume_at < wake) wake = r->resume_at;
        }
        if (self->c.cancelling && !cancelled) {
            cancelled = 1;
            pool_cancel_busy(&self->pool);
        }
        if (busy == 0 && self->c.stopping) break;
        grpc_status_code status;
        grpc_slice details;
        Rpc *r = common_next(&self->c, wake, &t, &status, &details, &stop);
        if (r == NULL) continue;
        busy--;
        Event e = {t, t - r->t0, 0, status, EV_DONE, details};
        pthread_mutex_lock(&self->c.sink.mu);
        self->c.sink.inflight--;
        sink_push_locked(&self->c.sink, e);
        pthread_mutex_unlock(&self->c.sink.mu);
        if (self->c.stopping) continue;
        if (code_in(self->backoff_mask, status)) r->resume_at = t + self->backoff_ns;
        else {
            loop_send(self, r->index, t);
            busy += r->busy;
        }
    }
    sink_finish(&self->c.sink);
    return NULL;
}

int closed_init(Common *c, Pool *pool, PyObject *args, PyObject *kwargs, int64_t *backoff_ns, uint32_t *mask) {
    PyObject *owner, *payloads, *codes, *metadata = Py_None;
    int concurrency;
    Py_ssize_t offset = 0, stride = 1;
    double timeout_s, backoff_s;
    static char *names[] = {"channel", "payloads", "concurrency", "timeout_s", "backoff_s", "backoff_codes",
                            "metadata", "offset", "stride", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OiddO|Onn", names, &ChannelType, &owner, &payloads,
                                     &concurrency, &timeout_s, &backoff_s, &codes, &metadata, &offset, &stride))
        return -1;
    if (concurrency < 1) {
        PyErr_SetString(PyExc_ValueError, "concurrency must be >= 1");
        return -1;
    }
    int64_t codes_mask = code_mask(codes);
    if (codes_mask < 0) return -1;
    if (common_init(c, owner, payloads, metadata, timeout_s) < 0) return -1;
    *mask = (uint32_t)codes_mask;
    *backoff_ns = (int64_t)(backoff_s * 1e9);
    for (int i = 0; i < concurrency; i++) pool_add(pool)->next = offset + (Py_ssize_t)i * stride;
    return concurrency;
}

static int Loop_init(Loop *self, PyObject *args, PyObject *kwargs) {
    if (closed_init(&self->c, &self->pool, args, kwargs, &self->backoff_ns, &self->backoff_mask) < 0) return -1;
    if (start_thread(&self->thread, loop_main, self) < 0) return -1;
    self->running = 1;
    return 0;
}

static void Loop_dealloc(Loop *self) {
    if (self->running) {
        self->c.stopping = 1;
        self->c.cancelling = 1; /* the loop thread cancels its calls in flight, drains them and exits */
        Py_BEGIN_ALLOW_THREADS
        pthread_join(self->thread, NULL);
        Py_END_ALLOW_THREADS
        self->running = 0;
    }
    common_free(&self->c);
    pool_free(&self->pool);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Loop_take(AnyLoop *self, PyObject *unused) { return take_events(self, 0); }

static PyObject *Loop_stop(AnyLoop *self, PyObject *unused) {
    self->c.stopping = 1;
    Py_RETURN_NONE;
}

/* what Python calls on either closed loop (Loop, SyncLoop) */
PyMethodDef closed_loop_methods[] = {
    {"wait", (PyCFunction)any_wait, METH_VARARGS, LOOP_WAIT_DOC},
    {"take", (PyCFunction)Loop_take, METH_NOARGS,
     "take() -> (events, sent): the completions since the last take, each (end_ns, latency_ns, code, details)."},
    {"stop", (PyCFunction)Loop_stop, METH_NOARGS, "Send no more; calls in flight still complete."},
    {NULL, NULL, 0, NULL}};

PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.Loop",
    .tp_basicsize = sizeof(Loop), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Loop_init, .tp_dealloc = (destructor)Loop_dealloc,
    .tp_methods = closed_loop_methods, .tp_getset = any_getset,
    .tp_doc = "A closed loop of N calls in flight on one completion queue, on its own C thread."};
