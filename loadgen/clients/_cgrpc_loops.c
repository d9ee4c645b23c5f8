/* The native sender's loops: gRPC calls made and completed on C threads that never take the GIL,
 * handed to Python in batches through a Sink (loadgen/clients/_cgrpc.h).
 *
 *   Loop(channel, payloads, concurrency, timeout_s, backoff_s, metadata, offset, stride)
 *       a closed loop (loadgen/native_loop.py NativeClosedLoop): N calls in flight on one completion
 *       queue, each sent again when it completes: perf_analyzer's async concurrency mode
 *       (perf_analyzer concurrency_worker.cc). One thread owns the queue: it starts the N calls, takes
 *       each completion, stamps it (CLOCK_MONOTONIC, the clock of time.perf_counter_ns) and sends that
 *       slot's next call at once. After a connection-level failure a slot waits backoff_s.
 *   OpenLoop(channel, payloads, offsets_ns, period_ns, start_ns, max_outstanding, late_ns, timeout_s, metadata)
 *       an open loop (NativeOpenLoop): call k is due at start_ns + offsets[k % n] + (k / n) * period_ns,
 *       whatever the answers: perf_analyzer's request-rate mode (perf_analyzer request_rate_worker.cc,
 *       a worker that sleeps until each scheduled time and sends). A sender thread sleeps to each due
 *       time (a timed wait to an absolute CLOCK_MONOTONIC time, timer slack 1 ns) and starts the
 *       call; a receiver thread owns the completion queue and stamps completions. A call sent more than
 *       late_ns after its due time is marked late; one due while max_outstanding are in flight is dropped.
 *
 * Both: wait(max_wait_s) waits for a batch, take() takes the events; stop() sends no more, the calls
 * in flight still complete; dropping the object cancels those, then joins the threads. */
#include "_cgrpc.h"

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/prctl.h>
#include <time.h>

/* what both loops hold: the channel, the request, the sink and the stop flags */
typedef struct {
    Channel *owner;
    grpc_completion_queue *cq;
    grpc_metadata *metadata;
    size_t n_metadata;
    grpc_slice *payloads;
    Py_ssize_t n_payloads;
    double timeout_s;
    Sink sink;
    volatile int stopping;   /* set by Python: send no more */
    volatile int cancelling; /* set by dealloc: cancel what is in flight */
} Common;

static int common_init(Common *c, PyObject *owner, PyObject *payloads, PyObject *metadata, double timeout_s) {
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

static void common_free(Common *c) {
    if (c->cq != NULL) {
        drain_shutdown(c->cq);
        sink_destroy(&c->sink);
        c->cq = NULL;
    }
    payloads_free(&c->payloads, &c->n_payloads);
    metadata_free(&c->metadata, &c->n_metadata);
    Py_CLEAR(c->owner);
}

static grpc_call_error common_start(Common *c, Rpc *r, grpc_slice body) {
    return rpc_start(r, c->owner, c->cq, body, c->metadata, c->n_metadata, c->timeout_s, r);
}

/* one completion off the queue (receiving thread): the slot, its status and details; NULL when the
 * queue timed out (*stop = 0) or shut down (*stop = 1) */
static Rpc *common_next(Common *c, int64_t wake_ns, int64_t *t, grpc_status_code *status, grpc_slice *details,
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

static Event refused(int64_t t) {
    Event e = {t, 0, 0, GRPC_STATUS_INTERNAL, EV_DONE,
               grpc_slice_from_static_string("grpc_call_start_batch refused the call")};
    return e;
}

/* a loop's calls: every slot made so far, each its own allocation (gRPC writes into a slot while its
 * call is in flight, so slots never move), and a stack of the idle ones (the open loop's) */
typedef struct {
    Rpc **slots;
    int n_slots, cap;
    Rpc **idle;
    int n_idle;
} Pool;

static Rpc *pool_add(Pool *p) {
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

static Rpc *pool_take(Pool *p) { return p->n_idle > 0 ? p->idle[--p->n_idle] : pool_add(p); }

static void pool_put(Pool *p, Rpc *r) { p->idle[p->n_idle++] = r; }

static void pool_cancel_busy(Pool *p) {
    for (int i = 0; i < p->n_slots; i++)
        if (p->slots[i]->busy) grpc_call_cancel(p->slots[i]->call, NULL);
}

static void pool_free(Pool *p) {
    for (int i = 0; i < p->n_slots; i++) free(p->slots[i]);
    free(p->slots);
    free(p->idle);
    memset(p, 0, sizeof *p);
}

/* ---- Loop: the closed loop ---- */

typedef struct {
    PyObject_HEAD
    Common c;
    Pool pool; /* one slot per call in flight, made at the start */
    int64_t backoff_ns;
    pthread_t thread;
    int running; /* the thread was started and not joined */
} Loop;

static int backs_off(grpc_status_code s) {
    return s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_DEADLINE_EXCEEDED || s == GRPC_STATUS_CANCELLED;
}

/* start slot i's next call at `t` (loop thread); a call the core refuses is an INTERNAL event and backs off */
static void loop_send(Loop *self, int i, int64_t t) {
    Rpc *r = self->pool.slots[i];
    grpc_slice body = self->c.payloads[r->next % self->c.n_payloads];
    r->next++;
    r->t0 = t;
    r->resume_at = 0;
    int ok = common_start(&self->c, r, body) == GRPC_CALL_OK;
    if (!ok) {
        rpc_finish(r);
        grpc_slice_unref(r->details);
        r->resume_at = t + self->backoff_ns;
    }
    r->busy = ok;
    pthread_mutex_lock(&self->c.sink.mu);
    self->c.sink.sent++;
    if (ok) self->c.sink.inflight++;
    else sink_push_locked(&self->c.sink, refused(t));
    pthread_mutex_unlock(&self->c.sink.mu);
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
        if (backs_off(status)) r->resume_at = t + self->backoff_ns;
        else {
            loop_send(self, r->index, t);
            busy += r->busy;
        }
    }
    sink_finish(&self->c.sink);
    return NULL;
}

static int start_thread(pthread_t *thread, void *(*main)(void *), void *arg) {
    if (pthread_create(thread, NULL, main, arg) == 0) return 0;
    PyErr_SetString(PyExc_OSError, "could not start a loop thread");
    return -1;
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
    if (concurrency < 1) {
        PyErr_SetString(PyExc_ValueError, "concurrency must be >= 1");
        return -1;
    }
    if (common_init(&self->c, owner, payloads, metadata, timeout_s) < 0) return -1;
    for (int i = 0; i < concurrency; i++) pool_add(&self->pool)->next = offset + (Py_ssize_t)i * stride;
    self->backoff_ns = (int64_t)(backoff_s * 1e9);
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

/* ---- OpenLoop: the open loop ---- */

typedef struct {
    PyObject_HEAD
    Common c;
    int64_t *offsets;
    Py_ssize_t n_offsets;
    int64_t period_ns, start_ns;
    int max_outstanding; /* 0: no cap */
    int64_t late_ns;     /* a send this long after its due time is late (loadgen/drivers.py DELAY_TOLERANCE_NS) */
    Pool pool; /* under c.sink.mu: grows to the most calls in flight at once */
    int sending; /* under c.sink.mu: the sender thread is still sending (the receiver exits after it, when idle) */
    pthread_mutex_t sleep_mu; /* the sender sleeps on sleep_cv (CLOCK_MONOTONIC) until due or stopped */
    pthread_cond_t sleep_cv;
    pthread_t sender, receiver;
    int running;
} OpenLoop;

/* the receiver looks at stop/cancel this often when nothing completes (a stop with nothing in flight
 * ends the loop within it); longer than LOOP_TICK_NS, as nothing else wakes it between requests */
#define OPEN_TICK_NS 50000000

/* sleep to `target` on CLOCK_MONOTONIC (a timed wait that stop() cuts short); 0 when stopped first */
static int open_sleep_until(OpenLoop *self, int64_t target) {
    struct timespec ts = {(time_t)(target / 1000000000), (long)(target % 1000000000)};
    pthread_mutex_lock(&self->sleep_mu);
    while (!self->c.stopping && now_ns() < target)
        if (pthread_cond_timedwait(&self->sleep_cv, &self->sleep_mu, &ts) == ETIMEDOUT) break;
    int go = !self->c.stopping;
    pthread_mutex_unlock(&self->sleep_mu);
    return go;
}

static void open_stop(OpenLoop *self) {
    pthread_mutex_lock(&self->sleep_mu);
    self->c.stopping = 1;
    pthread_cond_broadcast(&self->sleep_cv);
    pthread_mutex_unlock(&self->sleep_mu);
}

static void *open_send_main(void *arg) {
    OpenLoop *self = (OpenLoop *)arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake at the due time, not the default 50 us after it */
    Sink *sink = &self->c.sink;
    for (int64_t k = 0;; k++) {
        int64_t target = self->start_ns + self->offsets[k % self->n_offsets] + (k / self->n_offsets) * self->period_ns;
        if (!open_sleep_until(self, target)) break;
        int64_t t = now_ns();
        pthread_mutex_lock(&sink->mu);
        if (self->max_outstanding > 0 && sink->inflight >= self->max_outstanding) {
            Event e = {target, 0, 0, GRPC_STATUS_OK, EV_DROPPED, grpc_empty_slice()};
            sink_push_locked(sink, e);
            pthread_mutex_unlock(&sink->mu);
            continue;
        }
        Rpc *r = pool_take(&self->pool);
        sink->sent++;
        sink->inflight++;
        r->busy = 1;
        pthread_mutex_unlock(&sink->mu);
        r->target = target;
        r->t0 = t;
        r->late = t - target > self->late_ns;
        if (common_start(&self->c, r, self->c.payloads[k % self->c.n_payloads]) == GRPC_CALL_OK) continue;
        rpc_finish(r);
        grpc_slice_unref(r->details);
        pthread_mutex_lock(&sink->mu);
        r->busy = 0;
        sink->inflight--;
        pool_put(&self->pool, r);
        sink_push_locked(sink, refused(t));
        pthread_mutex_unlock(&sink->mu);
    }
    pthread_mutex_lock(&sink->mu);
    self->sending = 0;
    pthread_mutex_unlock(&sink->mu);
    return NULL;
}

static void *open_receive_main(void *arg) {
    OpenLoop *self = (OpenLoop *)arg;
    Sink *sink = &self->c.sink;
    int cancelled = 0, stop = 0;
    while (!stop) {
        pthread_mutex_lock(&sink->mu);
        int done = sink->inflight == 0 && !self->sending;
        if (self->c.cancelling && !cancelled) {
            cancelled = 1;
            pool_cancel_busy(&self->pool);
        }
        pthread_mutex_unlock(&sink->mu);
        if (done) break;
        int64_t t;
        grpc_status_code status;
        grpc_slice details;
        Rpc *r = common_next(&self->c, now_ns() + OPEN_TICK_NS, &t, &status, &details, &stop);
        if (r == NULL) continue;
        Event e = {t, t - r->target, t - r->t0, status, r->late ? EV_LATE : EV_DONE, details};
        pthread_mutex_lock(&sink->mu);
        sink->inflight--;
        pool_put(&self->pool, r);
        sink_push_locked(sink, e);
        pthread_mutex_unlock(&sink->mu);
    }
    sink_finish(sink);
    return NULL;
}

static int OpenLoop_init(OpenLoop *self, PyObject *args, PyObject *kwargs) {
    PyObject *owner, *payloads, *offsets, *metadata = Py_None;
    long long period_ns, start_ns, late_ns;
    int max_outstanding;
    double timeout_s;
    static char *names[] = {"channel", "payloads", "offsets_ns", "period_ns", "start_ns", "max_outstanding",
                            "late_ns", "timeout_s", "metadata", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OOLLiLd|O", names, &ChannelType, &owner, &payloads,
                                     &offsets, &period_ns, &start_ns, &max_outstanding, &late_ns, &timeout_s,
                                     &metadata))
        return -1;
    PyObject *seq = PySequence_Fast(offsets, "offsets_ns must be a sequence of int");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || period_ns < 1 || max_outstanding < 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "need offsets, period_ns >= 1 and max_outstanding >= 0");
        return -1;
    }
    self->offsets = PyMem_Calloc((size_t)n, sizeof(int64_t));
    for (Py_ssize_t i = 0; i < n; i++) {
        self->offsets[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (self->offsets[i] == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    self->n_offsets = n;
    self->period_ns = period_ns;
    self->start_ns = start_ns;
    self->max_outstanding = max_outstanding;
    self->late_ns = late_ns;
    if (common_init(&self->c, owner, payloads, metadata, timeout_s) < 0) return -1;
    pthread_mutex_init(&self->sleep_mu, NULL);
    monotonic_cond_init(&self->sleep_cv);
    self->sending = 1;
    if (start_thread(&self->receiver, open_receive_main, self) < 0) return -1;
    if (start_thread(&self->sender, open_send_main, self) < 0) {
        open_stop(self);
        pthread_mutex_lock(&self->c.sink.mu);
        self->sending = 0;
        pthread_mutex_unlock(&self->c.sink.mu);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(self->receiver, NULL);
        Py_END_ALLOW_THREADS
        return -1;
    }
    self->running = 1;
    return 0;
}

static void OpenLoop_dealloc(OpenLoop *self) {
    if (self->running) {
        open_stop(self);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(self->sender, NULL);
        self->c.cancelling = 1; /* the receiver cancels the calls in flight, drains them and exits */
        pthread_join(self->receiver, NULL);
        Py_END_ALLOW_THREADS
        self->running = 0;
    }
    if (self->c.cq != NULL) {
        pthread_mutex_destroy(&self->sleep_mu);
        pthread_cond_destroy(&self->sleep_cv);
    }
    common_free(&self->c);
    pool_free(&self->pool);
    PyMem_Free(self->offsets);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- what Python calls on either loop (both start with Common after the object head) ---- */

typedef struct {
    PyObject_HEAD
    Common c;
} AnyLoop;

static PyObject *any_wait(AnyLoop *self, PyObject *args) {
    double max_wait_s;
    if (!PyArg_ParseTuple(args, "d", &max_wait_s)) return NULL;
    if (self->c.cq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "loop not initialised");
        return NULL;
    }
    sink_wait(&self->c.sink, max_wait_s);
    Py_RETURN_NONE;
}

static PyObject *take_events(AnyLoop *self, int open_loop) {
    if (self->c.cq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "loop not initialised");
        return NULL;
    }
    return sink_take(&self->c.sink, open_loop);
}

static PyObject *Loop_take(AnyLoop *self, PyObject *unused) { return take_events(self, 0); }

static PyObject *OpenLoop_take(AnyLoop *self, PyObject *unused) { return take_events(self, 1); }

static PyObject *any_stop(AnyLoop *self, PyObject *unused) {
    self->c.stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *OpenLoop_stop(OpenLoop *self, PyObject *unused) {
    open_stop(self);
    Py_RETURN_NONE;
}

static PyObject *any_inflight(AnyLoop *self, void *unused) { return sink_inflight(&self->c.sink); }

static PyObject *any_finished(AnyLoop *self, void *unused) { return sink_finished(&self->c.sink); }

static PyMethodDef Loop_methods[] = {
    {"wait", (PyCFunction)any_wait, METH_VARARGS,
     "wait(max_wait_s): until a batch of events is ready or the loop finished, at most max_wait_s (GIL released)."},
    {"take", (PyCFunction)Loop_take, METH_NOARGS,
     "take() -> (events, sent): the completions since the last take, each (end_ns, latency_ns, code, details)."},
    {"stop", (PyCFunction)any_stop, METH_NOARGS, "Send no more; calls in flight still complete."},
    {NULL, NULL, 0, NULL}};

static PyMethodDef OpenLoop_methods[] = {
    {"wait", (PyCFunction)any_wait, METH_VARARGS,
     "wait(max_wait_s): until a batch of events is ready or the loop finished, at most max_wait_s (GIL released)."},
    {"take", (PyCFunction)OpenLoop_take, METH_NOARGS,
     "take() -> (events, sent): the events since the last take, each (end_ns, latency_ns, service_ns, kind, code, "
     "details); kind 0 on time, 1 sent late, 2 dropped (end_ns: its due time)."},
    {"stop", (PyCFunction)OpenLoop_stop, METH_NOARGS, "Send no more; calls in flight still complete."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef any_getset[] = {
    {"inflight", (getter)any_inflight, NULL, "calls in flight now", NULL},
    {"finished", (getter)any_finished, NULL, "the loop's threads have stopped (after stop(), calls done)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.Loop",
    .tp_basicsize = sizeof(Loop), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Loop_init, .tp_dealloc = (destructor)Loop_dealloc,
    .tp_methods = Loop_methods, .tp_getset = any_getset,
    .tp_doc = "A closed loop of N calls in flight on one completion queue, on its own C thread."};

PyTypeObject OpenLoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.OpenLoop",
    .tp_basicsize = sizeof(OpenLoop), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)OpenLoop_init, .tp_dealloc = (destructor)OpenLoop_dealloc,
    .tp_methods = OpenLoop_methods, .tp_getset = any_getset,
    .tp_doc = "An open loop: calls sent on a fixed schedule by one C thread, completed on another."};
