#!/usr/bin/env python3
"""A loopback webhook receiver for the alert test: appends each POST body as
one line to OUT, answers 200, and writes its port to PORT_FILE.
Usage: alert_receiver.py PORT_FILE OUT"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(length, 1 << 20))
        with open(sys.argv[2], "ab") as out:
            out.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.timeout = 1
for _ in range(600):  # bounded: at most ~10 minutes
    server.handle_request()
