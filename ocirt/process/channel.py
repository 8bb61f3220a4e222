"""The message channel between the `create` process, the intermediate and init.

A SOCK_SEQPACKET socketpair: each message is one JSON object with a "type".
Types: go, userns, maps-done, init-pid, hook, hook-done, ready, error, log (a debug
line for the parent's --log).
"""
import os
import _socket as socket  # the C module: `socket` imports selectors and enum

from .. import jsonfast


class Channel:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, type_, **fields):
        fields["type"] = type_
        self.sock.send(jsonfast.dumps(fields).encode())

    def recv(self):
        """The next message, or None when every peer has closed its end."""
        data, anc, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4),
                                                        socket.MSG_CMSG_CLOEXEC)
        fds = []
        for level, kind, payload in anc:  # fds passed along (the seccomp notify fd)
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(int.from_bytes(payload[i:i + 4], "little")
                           for i in range(0, len(payload) - len(payload) % 4, 4))
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        msg = jsonfast.loads(data)
        if fds:
            msg["fds"] = fds
        return msg

    def send_fd(self, type_, fd, **fields):
        """A message with one fd attached (SCM_RIGHTS)."""
        fields["type"] = type_
        self.sock.sendmsg([jsonfast.dumps(fields).encode()],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, "little"))])

    def debug(self, on, text):
        """A debug line for the parent's log (`on`: --debug was given)."""
        if on:
            self.send("log", msg=text)

    def expect(self, type_):
        msg = self.recv()
        if msg is None:
            raise EOFError("peer closed the channel")
        if msg["type"] == "error":
            raise ChildError(msg)
        if msg["type"] != type_:
            raise EOFError(f"expected {type_}, got {msg['type']}")
        return msg

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


class ChildError(Exception):
    def __init__(self, msg):
        self.msg = msg
        super().__init__(msg.get("message", "init failed"))
