/* What the four units of saturate's native gRPC sender share: loadgen/clients/_cgrpc.c (the module,
 * Channel, Caller, one call's ops, the event sink), loadgen/clients/_cgrpc_loops.c (what the loops
 * are made of, and the closed loop), loadgen/clients/_cgrpc_sync.c (the closed loop on one thread per
 * call) and loadgen/clients/_cgrpc_open.c (the open loop). Built together by tools/build_native.sh. */
#ifndef SATURATE_CGRPC_H
#define SATURATE_CGRPC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    grpc_channel *channel;
    grpc_slice method;
} Channel;

extern PyTypeObject ChannelType;
extern PyTypeObject LoopType;
extern PyTypeObject OpenLoopType;
extern PyTypeObject SyncLoopType;

/* ---- one unary call ---- */

typedef struct {
    grpc_call *call;
    grpc_byte_buffer *sent, *received;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    int64_t t0;        /* loops: when this slot's call started */
    int64_t resume_at; /* Loop: > 0 while the slot backs off after a connection-level failure */
    int64_t target;    /* OpenLoop: when the schedule wanted this call sent */
    Py_ssize_t next;   /* Loop: index of the slot's next payload */
    int index;         /* loops: this slot's place in the loop's slots */
    int busy;          /* loops: a call is in flight */
    int late;          /* OpenLoop: sent more than the delay tolerance after `target` */
} Rpc;

grpc_call_error rpc_start(Rpc *r, Channel *ch, grpc_completion_queue *cq, grpc_slice body, grpc_metadata *md,
                          size_t n_md, double timeout_s, void *tag);
void rpc_finish(Rpc *r);
void drain_shutdown(grpc_completion_queue *cq);

/* ---- what a loop is made from ---- */

void metadata_free(grpc_metadata **md, size_t *n);
int metadata_parse(PyObject *obj, grpc_metadata **md, size_t *n);
int payloads_parse(PyObject *obj, grpc_slice **out, Py_ssize_t *n);
void payloads_free(grpc_slice **payloads, Py_ssize_t *n);
int64_t now_ns(void);
gpr_timespec after_ns(int64_t ns);
PyObject *details_text(grpc_slice details);
void monotonic_cond_init(pthread_cond_t *cv); /* a condition variable whose timed waits use CLOCK_MONOTONIC */

#define LOOP_TICK_NS 10000000 /* a loop thread looks at stop/cancel at least this often */

/* ---- the sink: what a loop's C threads hand to Python (wait, take) ---- */

enum { EV_DONE = 0, EV_LATE = 1, EV_DROPPED = 2 }; /* EV_LATE: done, but sent late; EV_DROPPED: never sent */

/* Python is woken for a batch this large; else it takes the events on its own clock (loadgen/native_loop.py
 * every POLL_S, and at every window edge), so a completion costs no thread wake-up of its own. */
#define SINK_BATCH 1024

typedef struct {
    int64_t end_ns, latency_ns, service_ns; /* EV_DROPPED: end_ns = the scheduled send time */
    grpc_status_code status;
    int kind;
    grpc_slice details;
} Event;

typedef struct {
    pthread_mutex_t mu; /* guards everything below (and a loop's slot pool) */
    pthread_cond_t cv;  /* on CLOCK_MONOTONIC; signalled when SINK_BATCH events wait and when the loop finishes */
    Event *events;
    size_t n_events, cap_events;
    long sent;    /* calls started since the last take */
    int inflight; /* calls in flight now */
    int finished; /* the loop's threads are done */
} Sink;

void sink_init(Sink *s);
void sink_destroy(Sink *s);
void sink_push_locked(Sink *s, Event e); /* mu held */
void sink_finish(Sink *s);
void sink_wait(Sink *s, double max_wait_s);
PyObject *sink_take(Sink *s, int open_loop);
PyObject *sink_inflight(Sink *s);
PyObject *sink_finished(Sink *s);

/* ---- what both loops are made of (loadgen/clients/_cgrpc_loops.c) ---- */

/* what both loops hold after their object head: the channel, the request, the sink and the stop flags */
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

int common_init(Common *c, PyObject *owner, PyObject *payloads, PyObject *metadata, double timeout_s);
void common_free(Common *c);
grpc_call_error common_start(Common *c, Rpc *r, grpc_slice body);
/* one completion off the queue (receiving thread): the slot, its status and details; NULL when the
 * queue timed out (*stop = 0) or shut down (*stop = 1) */
Rpc *common_next(Common *c, int64_t wake_ns, int64_t *t, grpc_status_code *status, grpc_slice *details, int *stop);
Event refused(int64_t t); /* the event of a call the core would not start */
int start_thread(pthread_t *thread, void *(*main)(void *), void *arg); /* -1 with a Python error */
/* the status codes in `codes` (a sequence of int 0..31) as a bit mask; -1 with a Python error */
int64_t code_mask(PyObject *codes);
int code_in(uint32_t mask, grpc_status_code s); /* status s is in the mask */

/* a loop's calls: every slot made so far, each its own allocation (gRPC writes into a slot while its
 * call is in flight, so slots never move), and a stack of the idle ones (the open loop's) */
typedef struct {
    Rpc **slots;
    int n_slots, cap;
    Rpc **idle;
    int n_idle;
} Pool;

Rpc *pool_add(Pool *p);
Rpc *pool_take(Pool *p); /* an idle slot, else a new one */
void pool_put(Pool *p, Rpc *r);
void pool_cancel_busy(Pool *p);
void pool_free(Pool *p);

/* what Python calls on either loop */
typedef struct {
    PyObject_HEAD
    Common c;
} AnyLoop;

PyObject *any_wait(AnyLoop *self, PyObject *args);
PyObject *take_events(AnyLoop *self, int open_loop);
extern PyGetSetDef any_getset[];
/* a closed loop's arguments (channel, payloads, concurrency, timeout_s, backoff_s, backoff_codes[, metadata,
 * offset, stride]) into its Common, one pool slot per call in flight, its back-off: the concurrency, or -1
 * with a Python error */
int closed_init(Common *c, Pool *pool, PyObject *args, PyObject *kwargs, int64_t *backoff_ns, uint32_t *mask);
/* start slot r's next call at `t` on `cq` (tag r) and count it in the sink; a call the core refuses is
 * released and pushed as an INTERNAL event. 1 when the call is in flight. */
int closed_send(Common *c, Rpc *r, grpc_completion_queue *cq, int64_t t);
extern PyMethodDef closed_loop_methods[]; /* wait, take, stop of a closed loop (Loop, SyncLoop) */
#define LOOP_WAIT_DOC "wait(max_wait_s): until a batch of events is ready or the loop finished, at most max_wait_s (GIL released)."

#endif
