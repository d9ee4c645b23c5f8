# Types of the native gRPC sender built from loadgen/clients/_cgrpc.c (tools/build_native.sh).
from collections.abc import Sequence

GRPC_VERSION: str

class Channel:
    def __init__(self, target: str, method: str) -> None: ...

class Caller:
    def __init__(self, channel: Channel, metadata: Sequence[tuple[str, str]] | None = None) -> None: ...
    def infer(self, payload: bytes, timeout_s: float, /) -> tuple[int, str] | None: ...
