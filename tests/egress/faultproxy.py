#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy on loopback for the egress tests.

  faultproxy.py --port P --upstream HOST:PORT [--fail503 N] [--stall N] [--rate BYTES_PER_S]
                [--hold REGEX] [--log FILE]

The first N requests get "503 + Retry-After: 1" (--fail503), or are read and never answered
(--stall: the client must time out); later requests are forwarded to the upstream. --rate
throttles request bodies so a test can kill things mid-upload. --hold: a request whose
"METHOD PATH?QUERY" matches is forwarded, the upstream's answer read, and then held back (logged
as "held") until the client gives up: the request took effect, the client never learns it.
One request per connection (answers carry Connection: close), which is all the tests need.
Log lines: "N ACTION METHOD PATH[?name&name...]" (query parameter names only, no values).
"""
import argparse, re, socket, threading, time

lock = threading.Lock()
state = {"n": 0}


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def handle(client, args, log):
    try:
        head, rest = read_head(client)
        if head is None:
            return
        lines = head.split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = bytearray(rest)
        t0 = time.monotonic()
        while len(body) < length:
            chunk = client.recv(min(65536, length - len(body)))
            if not chunk:
                return
            body += chunk
            if args.rate:
                ahead = len(body) / args.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        with lock:
            state["n"] += 1
            n = state["n"]
        action = "forward"
        target = lines[0].decode(errors="replace").rsplit(" ", 1)[0]  # METHOD PATH?QUERY
        if n <= args.fail503:
            action = "503"
        elif n <= args.fail503 + args.stall:
            action = "stall"
        elif args.hold and re.search(args.hold, target):
            action = "held"
        path, _, query = target.partition("?")
        names = "&".join(p.split("=", 1)[0] for p in query.split("&") if p)
        line = f"{n} {action} {path}{'?' + names if names else ''}\n"
        if log and action != "held":
            with lock, open(log, "a") as f:
                f.write(line)
        if action == "503":
            client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                           b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if action == "stall":
            while client.recv(65536):
                pass
            return
        keep = [l for l in lines[1:] if not l.lower().startswith(b"connection:")]
        req = b"\r\n".join([lines[0]] + keep + [b"Connection: close"]) + b"\r\n\r\n" + bytes(body)
        host, port = args.upstream.rsplit(":", 1)
        up = socket.create_connection((host, int(port)))
        up.sendall(req)
        while True:
            chunk = up.recv(65536)
            if not chunk:
                break
            if action != "held":
                client.sendall(chunk)
        up.close()
        if action == "held":
            # logged only now: the upstream has acted on the request
            if log:
                with lock, open(log, "a") as f:
                    f.write(line)
            while client.recv(65536):
                pass
    except OSError:
        pass
    finally:
        client.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--fail503", type=int, default=0)
    ap.add_argument("--stall", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--hold")
    ap.add_argument("--log")
    args = ap.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c, args, args.log), daemon=True).start()


if __name__ == "__main__":
    main()
