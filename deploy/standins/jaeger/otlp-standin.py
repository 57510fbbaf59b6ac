"""A stand-in for Jaeger v2 (`jaegertracing/jaeger`), for machines that cannot pull it.

No Jaeger package exists in Debian's or PyPI's registries, so scripts/compose-smoke runs
this instead, under the image name compose.yaml pins. It keeps the parts of Jaeger's
all-in-one contract that the shop and its smoke test use:

- OTLP/gRPC on 4317 (`opentelemetry.proto.collector.trace.v1.TraceService/Export`) and
  OTLP/HTTP on 4318 (`POST /v1/traces`, protobuf), answering as a collector does;
- the healthcheckv2 extension's `GET /status` on 13133 (200 once listening);
- the query API's `GET /api/services` on 16686, in Jaeger's JSON shape, listing every
  `service.name` that sent spans, and `GET /api/spans` (stand-in only) with span counts.

It is not Jaeger: it keeps no spans, only how many each service sent, and has no UI (the
page on 16686 says it is a stand-in). Every listener binds JAEGER_LISTEN_HOST (0.0.0.0 by
default, as the image sets it).
"""

import json
import os
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

HOST = os.environ.get("JAEGER_LISTEN_HOST", "0.0.0.0")
SPANS_BY_SERVICE: dict[str, int] = {}
LOCK = threading.Lock()


def fields(buf: bytes):
    """Yields (field number, wire type, value) of one protobuf message, without a schema."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            length, i = varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def record(export_request: bytes) -> None:
    """Counts the spans of an ExportTraceServiceRequest by the resource's service.name.

    ExportTraceServiceRequest{1: ResourceSpans}, ResourceSpans{1: Resource, 2: ScopeSpans},
    Resource{1: KeyValue}, KeyValue{1: key, 2: AnyValue{1: string}}, ScopeSpans{2: Span}.
    """
    for number, _, resource_spans in fields(export_request):
        if number != 1:
            continue
        service, spans = "unknown_service", 0
        for inner, _, value in fields(resource_spans):
            if inner == 1:
                for attr_no, _, kv in fields(value):
                    if attr_no != 1:
                        continue
                    parts = {n: v for n, _, v in fields(kv)}
                    if parts.get(1) == b"service.name" and 2 in parts:
                        any_value = {n: v for n, _, v in fields(parts[2])}
                        service = any_value.get(1, b"").decode("utf-8", "replace")
            elif inner == 2:
                spans += sum(1 for n, _, _ in fields(value) if n == 2)
        with LOCK:
            SPANS_BY_SERVICE[service] = SPANS_BY_SERVICE.get(service, 0) + spans


class Collector(grpc.GenericRpcHandler):
    """Accepts OTLP exports; answers every collector service with an empty response."""

    def service(self, handler_call_details):
        method = handler_call_details.method
        if not method.startswith("/opentelemetry.proto.collector."):
            return None

        def export(request: bytes, context) -> bytes:
            if method.endswith("TraceService/Export"):
                try:
                    record(request)
                except (ValueError, IndexError) as error:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unreadable export: {error}")
            return b""

        return grpc.unary_unary_rpc_method_handler(export)


class Http(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def json(self, value) -> None:
        self.reply(200, json.dumps(value).encode(), "application/json")

    def do_GET(self):
        port = self.server.server_address[1]
        path = self.path.split("?", 1)[0]
        with LOCK:
            services = sorted(SPANS_BY_SERVICE)
            counts = dict(SPANS_BY_SERVICE)
        if port == 13133 and path == "/status":
            self.json({"status": "StatusOK"})
        elif port == 16686 and path == "/api/services":
            self.json({"data": services, "total": len(services), "limit": 0, "offset": 0, "errors": None})
        elif port == 16686 and path == "/api/spans":
            self.json(counts)
        elif port == 16686 and path == "/":
            page = b"<h1>Jaeger stand-in</h1><p>Counts spans per service; no UI. See /api/services.</p>"
            self.reply(200, page, "text/html")
        else:
            self.reply(404, b"not found", "text/plain")

    def do_POST(self):
        port = self.server.server_address[1]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if port == 4318 and self.path == "/v1/traces":
            try:
                record(body)
            except (ValueError, IndexError) as error:
                self.reply(400, str(error).encode(), "text/plain")
                return
            self.reply(200, b"", "application/x-protobuf")
        elif port == 4318 and self.path in ("/v1/metrics", "/v1/logs"):
            self.reply(200, b"", "application/x-protobuf")
        else:
            self.reply(404, b"not found", "text/plain")


def main() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((Collector(),))
    server.add_insecure_port(f"{HOST}:4317")
    server.start()
    for port in (4318, 13133, 16686):
        http = ThreadingHTTPServer((HOST, port), Http)
        threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"jaeger stand-in: OTLP gRPC {HOST}:4317, HTTP :4318, health :13133, query :16686", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
