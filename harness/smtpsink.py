"""A minimal SMTP server that accepts every message and keeps none, so notifikasi's
e-mail deliveries succeed during the benchmark as they would against a real mail server
(without it every delivery fails, is retried and reported as ``notification_failed``,
which is extra work a production system does not do).

    python -m harness.smtpsink PORT      (listens on 127.0.0.1 only)

Prints ``LISTENING``, and ``ACCEPTED <n>`` when it gets SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

accepted = 0


class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        self.in_data = False
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data):
        global accepted
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                accepted += 1
                self.transport.write(b"250 OK queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.transport.write(b"250-bench-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 Bye\r\n")
                self.transport.close()
                return
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                self.transport.write(b"250 OK\r\n")


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(Sink, "127.0.0.1", port)
    print("LISTENING", flush=True)
    await stop
    server.close()
    print(f"ACCEPTED {accepted}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
