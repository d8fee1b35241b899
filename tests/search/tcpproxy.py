"""A TCP proxy in front of a real server, to cut it off for a while: an outage of the
database as its clients see it (connections dropped, new ones refused), without stopping
a server that other tests share."""

import socket
import threading


class Proxy:
    """Forwards 127.0.0.1:``port`` to ``(host, port)`` of the server until :meth:`down`,
    refuses and drops everything until :meth:`up`."""

    def __init__(self, host, port):
        self.target = (host, port)
        self._lock = threading.Lock()
        self._sockets = []
        self._listener = None
        self.port = self._listen(0)

    def _listen(self, port):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener.getsockname()[1]

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by down()
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        """Refuse new connections and drop the open ones."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def up(self):
        """Accept connections again, on the same port."""
        self._listen(self.port)

    def close(self):
        self.down()
