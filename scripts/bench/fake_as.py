#!/usr/bin/env python3
"""Stand-in for `bench-as` (same interface), used when that binary is not built, and for the njs
rejection check (`--inactive`: every token is answered inactive).

  GET  /.well-known/openid-configuration   issuer http://127.0.0.1:PORT
  POST /introspect                         Basic gateway:gateway-secret; RFC 7662 JSON, scope "read", exp +5 min
  GET  /stats                              {"introspections": N}
  GET  /jwks                               {"keys": []} (Shroud's token handler wants a jwks_uri)

Usage: fake_as.py --addr 127.0.0.1:PORT [--inactive]
"""
import argparse
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT = base64.b64encode(b"gateway:gateway-secret").decode()
lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    inactive = False
    issuer = ""

    def log_message(self, *args):  # no per-request log
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            self.reply(200, {"issuer": self.issuer, "introspection_endpoint": self.issuer + "/introspect",
                             "jwks_uri": self.issuer + "/jwks"})
        elif self.path == "/jwks":
            self.reply(200, {"keys": []})
        elif self.path == "/stats":
            self.reply(200, {"introspections": count})
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        global count
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.path != "/introspect":
            return self.reply(404, {"error": "not_found"})
        if self.headers.get("Authorization") != "Basic " + CLIENT:
            return self.reply(401, {"error": "invalid_client"})
        token = (form.get("token") or [""])[0]
        with lock:
            count += 1
        if self.inactive or not token:
            return self.reply(200, {"active": False})
        now = int(time.time())
        self.reply(200, {"active": True, "scope": "read", "client_id": "bench-client", "sub": "bench-user",
                         "token_type": "Bearer", "iat": now, "exp": now + 300})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--inactive", action="store_true")
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    Handler.inactive = args.inactive
    Handler.issuer = f"http://{host}:{port}"
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
