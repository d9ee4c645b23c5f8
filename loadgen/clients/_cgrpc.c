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
 *   Channel(target)                        one HTTP/2 channel (no retries, no message size limit)
 *   Caller(channel, metadata)              one thread's completion queue and request metadata
 *   Caller.infer(payload, timeout_s)       None when OK, else (status code, details); timeout 0 = none
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <string.h>

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

static void Caller_free_metadata(Caller *self) {
    for (size_t i = 0; i < self->n_metadata; i++) {
        grpc_slice_unref(self->metadata[i].key);
        grpc_slice_unref(self->metadata[i].value);
    }
    PyMem_Free(self->metadata);
    self->metadata = NULL;
    self->n_metadata = 0;
}

static int Caller_init(Caller *self, PyObject *args, PyObject *kwargs) {
    PyObject *owner, *metadata = Py_None;
    static char *names[] = {"channel", "metadata", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|O", names, &ChannelType, &owner, &metadata)) return -1;
    if (self->cq != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Caller already initialised");
        return -1;
    }
    if (metadata != Py_None) {
        PyObject *seq = PySequence_Fast(metadata, "metadata must be a sequence of (key, value) pairs");
        if (seq == NULL) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        self->metadata = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(grpc_metadata));
        for (Py_ssize_t i = 0; i < n; i++) {
            const char *key, *value;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss", &key, &value)) {
                Py_DECREF(seq);
                Caller_free_metadata(self);
                return -1;
            }
            self->metadata[i].key = grpc_slice_from_copied_string(key);
            self->metadata[i].value = grpc_slice_from_copied_string(value);
            self->n_metadata = (size_t)i + 1;
        }
        Py_DECREF(seq);
    }
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
    Caller_free_metadata(self);
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
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_call_error started;
    grpc_event done;
    done.success = 0;
    Py_BEGIN_ALLOW_THREADS
    grpc_slice body = grpc_slice_from_copied_buffer(payload.buf, (size_t)payload.len);
    grpc_byte_buffer *sent = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_byte_buffer *received = NULL;
    gpr_timespec deadline = timeout_s > 0
        ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos((int64_t)(timeout_s * 1e9), GPR_TIMESPAN))
        : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_call *call = grpc_channel_create_call(self->owner->channel, NULL, GRPC_PROPAGATE_DEFAULTS, self->cq,
                                               self->owner->method, NULL, deadline, NULL);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = self->n_metadata;
    ops[0].data.send_initial_metadata.metadata = self->metadata;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = sent;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &received;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    started = grpc_call_start_batch(call, ops, 6, (void *)call, NULL);
    if (started == GRPC_CALL_OK)
        done = grpc_completion_queue_pluck(self->cq, (void *)call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (received != NULL) grpc_byte_buffer_destroy(received);
    grpc_byte_buffer_destroy(sent);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&payload);
    if (started != GRPC_CALL_OK || !done.success) {
        grpc_slice_unref(details);
        return Py_BuildValue("(is)", (int)GRPC_STATUS_INTERNAL,
                             started != GRPC_CALL_OK ? "grpc_call_start_batch refused the call"
                                                     : "the call's batch did not complete");
    }
    if (status == GRPC_STATUS_OK) {
        grpc_slice_unref(details);
        Py_RETURN_NONE;
    }
    PyObject *result = Py_BuildValue("(is#)", (int)status, (const char *)GRPC_SLICE_START_PTR(details),
                                     (Py_ssize_t)GRPC_SLICE_LENGTH(details));
    grpc_slice_unref(details);
    if (result == NULL) { /* details that are not UTF-8 */
        PyErr_Clear();
        result = Py_BuildValue("(is)", (int)status, "");
    }
    return result;
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
                                    "saturate's native gRPC sender (see loadgen/clients/_cgrpc.c).", -1, NULL};

PyMODINIT_FUNC PyInit__cgrpc(void) {
    if (PyType_Ready(&ChannelType) < 0 || PyType_Ready(&CallerType) < 0) return NULL;
    grpc_init();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ChannelType);
    PyModule_AddObject(m, "Channel", (PyObject *)&ChannelType);
    Py_INCREF(&CallerType);
    PyModule_AddObject(m, "Caller", (PyObject *)&CallerType);
    PyModule_AddStringConstant(m, "GRPC_VERSION", grpc_version_string());
    return m;
}
