/* The native sender's sync closed loop (loadgen/native_loop.py NativeSyncClosedLoop), on the parts the
 * loops share (loadgen/clients/_cgrpc_loops.c, declared in loadgen/clients/_cgrpc.h).
 *
 *   SyncLoop(channel, payloads, concurrency, timeout_s, backoff_s, backoff_codes, metadata, offset, stride)
 *       N calls in flight, each on its own C thread with its own completion queue: the thread starts
 *       its call, waits on its queue until that call completes, stamps it (CLOCK_MONOTONIC) and starts
 *       its next. This is perf_analyzer's sync concurrency mode (perf_analyzer concurrency_worker.cc
 *       with sync contexts: one thread per request in flight, each blocking in grpc++'s
 *       BlockingUnaryCall, which waits on a completion queue of its own), without the GIL.
 *
 * Why a second closed loop: against a dynamic batcher, when the calls of one batch complete together,
 * the one-queue loop (`Loop`) resends all of them within microseconds, so they reach the batcher
 * together again and form larger batches than perf_analyzer's client gets; here each thread wakes on
 * its own, as perf_analyzer's do, and the server sees perf_analyzer's arrival pattern.
 *
 * Same contract as Loop: after a failure whose status is one of backoff_codes a thread waits backoff_s;
 * wait(max_wait_s) / take() hand the events over; stop() sends no more (calls in flight complete);
 * dropping the object cancels those, then joins the threads. */
#include "_cgrpc.h"

#include <stdlib.h>
#include <time.h>

typedef struct SyncLoop SyncLoop;

typedef struct {
    SyncLoop *owner;
    Rpc *rpc;
    grpc_completion_queue *cq; /* this thread's own */
    pthread_t thread;
    int started;
} Worker;

struct SyncLoop {
    PyObject_HEAD
    Common c;
    Pool pool; /* one slot per thread */
    Worker *workers;
    int n_workers;
    int live; /* under c.sink.mu: threads still running; the last one finishes the sink */
    int64_t backoff_ns;
    uint32_t backoff_mask;
};

/* sleep until `until` (CLOCK_MONOTONIC ns) or until the loop stops, looking every LOOP_TICK_NS */
static void sleep_until(SyncLoop *self, int64_t until) {
    for (int64_t left = until - now_ns(); left > 0 && !self->c.stopping; left = until - now_ns()) {
        int64_t ns = left < LOOP_TICK_NS ? left : LOOP_TICK_NS;
        struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

/* wait for this thread's call; cancels it once the loop is being dropped. The completion's status. */
static grpc_status_code await_call(SyncLoop *self, Worker *w, grpc_slice *details) {
    int cancelled = 0;
    grpc_event ev;
    for (;;) {
        ev = grpc_completion_queue_next(w->cq, after_ns(LOOP_TICK_NS), NULL);
        if (ev.type == GRPC_OP_COMPLETE) break;
        if (self->c.cancelling && !cancelled) {
            cancelled = 1;
            grpc_call_cancel(w->rpc->call, NULL);
        }
    }
    Rpc *r = w->rpc;
    grpc_status_code status = ev.success ? r->status : GRPC_STATUS_INTERNAL;
    *details = r->details;
    rpc_finish(r);
    return status;
}

static void *worker_main(void *arg) {
    Worker *w = (Worker *)arg;
    SyncLoop *self = w->owner;
    Rpc *r = w->rpc;
    while (!self->c.stopping) {
        int64_t t = now_ns();
        if (!closed_send(&self->c, r, w->cq, t)) {
            sleep_until(self, t + self->backoff_ns);
            continue;
        }
        grpc_slice details;
        grpc_status_code status = await_call(self, w, &details);
        pthread_mutex_lock(&self->c.sink.mu);
        t = now_ns(); /* stamped under the sink's lock: the threads' events reach Python in time order */
        Event e = {t, t - r->t0, 0, status, EV_DONE, details};
        self->c.sink.inflight--;
        sink_push_locked(&self->c.sink, e);
        pthread_mutex_unlock(&self->c.sink.mu);
        if (code_in(self->backoff_mask, status)) sleep_until(self, t + self->backoff_ns);
    }
    pthread_mutex_lock(&self->c.sink.mu);
    int last = --self->live == 0;
    pthread_mutex_unlock(&self->c.sink.mu);
    if (last) sink_finish(&self->c.sink);
    return NULL;
}

static void join_workers(SyncLoop *self) {
    for (int i = 0; i < self->n_workers; i++) {
        Worker *w = &self->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = 0;
        }
        if (w->cq != NULL) {
            drain_shutdown(w->cq);
            w->cq = NULL;
        }
    }
}

static int SyncLoop_init(SyncLoop *self, PyObject *args, PyObject *kwargs) {
    int concurrency = closed_init(&self->c, &self->pool, args, kwargs, &self->backoff_ns, &self->backoff_mask);
    if (concurrency < 0) return -1;
    self->workers = calloc((size_t)concurrency, sizeof(Worker));
    if (self->workers == NULL) abort();
    self->n_workers = concurrency;
    for (int i = 0; i < concurrency; i++) {
        Worker *w = &self->workers[i];
        w->owner = self;
        w->rpc = self->pool.slots[i];
        w->cq = grpc_completion_queue_create_for_next(NULL);
    }
    self->live = concurrency;
    for (int i = 0; i < concurrency; i++) {
        if (start_thread(&self->workers[i].thread, worker_main, &self->workers[i]) < 0) {
            pthread_mutex_lock(&self->c.sink.mu);
            self->live -= concurrency - i; /* the ones never started */
            int none = self->live == 0;
            pthread_mutex_unlock(&self->c.sink.mu);
            self->c.stopping = 1;
            if (none) sink_finish(&self->c.sink);
            return -1;
        }
        self->workers[i].started = 1;
    }
    return 0;
}

static void SyncLoop_dealloc(SyncLoop *self) {
    if (self->workers != NULL) {
        self->c.stopping = 1;
        self->c.cancelling = 1; /* each thread cancels its call in flight and exits */
        Py_BEGIN_ALLOW_THREADS
        join_workers(self);
        Py_END_ALLOW_THREADS
        free(self->workers);
        self->workers = NULL;
    }
    common_free(&self->c);
    pool_free(&self->pool);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject SyncLoopType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "loadgen.clients._cgrpc.SyncLoop",
    .tp_basicsize = sizeof(SyncLoop), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SyncLoop_init, .tp_dealloc = (destructor)SyncLoop_dealloc,
    .tp_methods = closed_loop_methods, .tp_getset = any_getset,
    .tp_doc = "A closed loop of N calls in flight, each on its own C thread and completion queue."};
