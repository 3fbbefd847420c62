"""Serves fastapi_app:app the way `uvicorn fastapi_app:app --workers N` does, with TCP_NODELAY on
its connections.

    serve_fastapi.py PORT WORKERS [--as-packaged]

uvicorn 0.17.6 (Debian 12) binds the socket it hands to its worker processes with
socket.socket(family=AF_INET): its proto is 0, and asyncio sets TCP_NODELAY only on connections
accepted from a socket whose proto is IPPROTO_TCP (asyncio.base_events._set_nodelay). With --workers,
every connection then runs with Nagle's algorithm: h11 writes the headers and the body of a response
separately, the body waits for the client's delayed ACK of the headers (about 40 ms), and 32
connections make about 700 requests/s. Without --workers, uvicorn lets asyncio create the socket
(getaddrinfo gives proto 6) and the problem does not arise.

The fix here: the same supervisor (uvicorn.supervisors.Multiprocess) and server, given a listening
socket created with proto IPPROTO_TCP. --as-packaged binds with uvicorn's own Config.bind_socket()
instead, to show the difference. No access log (the other servers of the bench have none either).
"""
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess


def main():
    port = int(sys.argv[1])
    workers = int(sys.argv[2])
    as_packaged = "--as-packaged" in sys.argv[3:]
    config = uvicorn.Config("fastapi_app:app", host="127.0.0.1", port=port, workers=workers,
                            access_log=False, log_level="warning")
    if as_packaged:
        sock = config.bind_socket()
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.set_inheritable(True)
    server = uvicorn.Server(config=config)
    Multiprocess(config, target=server.run, sockets=[sock]).run()


if __name__ == "__main__":
    main()
