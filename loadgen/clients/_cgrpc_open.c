/* The native sender's open loop (loadgen/native_loop.py NativeOpenLoop), on the parts both loops share
 * (loadgen/clients/_cgrpc_loops.c, declared in loadgen/clients/_cgrpc.h).
 *
 *   OpenLoop(channel, payloads, offsets_ns, period_ns, start_ns, max_outstanding, late_ns, timeout_s, metadata)
 *       call k is due at start_ns + offsets[k % n] + (k / n) * period_ns, whatever the answers:
 *       perf_analyzer's request-rate mode (perf_analyzer request_rate_worker.cc, a worker that sleeps
 *       until each scheduled time and sends). A sender thread sleeps to each due time (a timed wait to
 *       an absolute CLOCK_MONOTONIC time, timer slack 1 ns) and starts the call; a receiver thread owns
 *       the completion queue and stamps completions. A call sent more than late_ns after its due time
 *       is marked late; one due while max_outstanding are in flight is dropped.
 *
 * wait(max_wait_s) waits for a batch, take() takes the events; stop() sends no more, the calls in
 * flight still complete; dropping the object cancels those, then joins both threads. */
#include "_cgrpc.h"

#include <errno.h>
#include <sys/prctl.h>
#include <time.h>

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

static PyObject *OpenLoop_take(AnyLoop *self, PyObject *unused) { return take_events(self, 1); }

static PyObject *OpenLoop_stop(OpenLoop *self, PyObject *unused) {
    open_stop(self);
    Py_RETURN_NONE;
}

static PyMethodDef OpenLoop_methods[] = {
    {"wait", (PyCFunction)any_wait, METH_VARARGS, LOOP_WAIT_DOC},
    {"take", (PyCFunction)OpenLoop_take, METH_NOARGS,
     "take() -> (events, sent): the events since the last take, each (end_ns, latency_ns, service_ns, kind, code, "
     "details); kind 0 on time, 1 sent late, 2 dropped (end_ns: its due time)."},
    {"stop", (PyCFunction)OpenLoop_stop, METH_NOARGS, "Send no more; calls in flight still complete."},
    {NULL, NULL, 0, NULL}};

PyTypeObject OpenLoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.OpenLoop",
    .tp_basicsize = sizeof(OpenLoop), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)OpenLoop_init, .tp_dealloc = (destructor)OpenLoop_dealloc,
    .tp_methods = OpenLoop_methods, .tp_getset = any_getset,
    .tp_doc = "An open loop: calls sent on a fixed schedule by one C thread, completed on another."};
