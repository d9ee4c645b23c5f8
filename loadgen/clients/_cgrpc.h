/* What the two units of saturate's native gRPC sender share: loadgen/clients/_cgrpc.c (the module,
 * Channel, Caller, one call's ops, the event sink) and loadgen/clients/_cgrpc_loops.c (the closed
 * and open loops on their own C threads). Built together by tools/build_native.sh. */
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

#endif
