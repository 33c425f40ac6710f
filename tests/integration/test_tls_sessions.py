"""TLS session tickets on the HTTP/1.1 path (server/tls_io.c).

A full TLS 1.3 handshake costs the server ~15 us of CPU and a send() per session ticket; OpenSSL's
default is two, sent on their own right after the handshake. The lean loop issues one, with the first
response and in the same send() as it. These cases check what a client sees: nothing from the server
between the handshake and its first request, exactly one ticket, and that the ticket resumes the next
connection (TLS 1.3; TLS 1.2 keeps its in-handshake ticket). Clients: python's ssl over a raw socket
(to see when bytes arrive) and openssl s_client (-msg lists each NewSessionTicket it reads)."""
import os
import select
import socket
import ssl
import subprocess
import tempfile

from mockserver import SLOWDOWN
from testcase import TlsServerTestCase

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class RawTls:
    """A TLS client over memory BIOs on a plain socket: the test sees every byte the server sends and
    when, which an ssl.SSLSocket hides (it reads post-handshake records by itself)."""

    def __init__(self, port, ctx, session=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOWDOWN)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost", session=session)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.receive()
        self.flush()  # the client's Finished

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def receive(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed during the handshake")
        self.incoming.write(data)

    def bytes_arrive_within(self, seconds):
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return bool(readable)

    def request(self, raw):
        """Sends raw and reads until the server closes; returns what was decrypted."""
        self.tls.write(raw)
        self.flush()
        out = b""
        while True:
            try:
                chunk = self.tls.read(65536)
                if not chunk:  # close_notify (read() reports it as b"")
                    return out
                out += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return out
            data = self.sock.recv(65536)
            if not data:
                return out
            self.incoming.write(data)

    def close(self):
        self.sock.close()


def s_client(port, *args):
    """openssl s_client sending REQUEST; its output (with -msg: one line per handshake message)."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", "http/1.1", "-msg", "-ign_eof", *args]
    r = subprocess.run(cmd, input=REQUEST, capture_output=True, timeout=20 * SLOWDOWN)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


class TlsSessionTicketTest(TlsServerTestCase):
    def test_tls13_no_ticket_before_the_first_request(self):
        # Before: two NewSessionTicket records (~510 bytes) arrived right after the handshake, each
        # from a send() of its own.
        srv, port = self.tls_server("--workers", "1", "--delay", "0")
        ctx = client_context()  # a session resumes only through the context it came from
        client = RawTls(port, ctx)
        try:
            self.assertEqual(client.tls.version(), "TLSv1.3")
            self.assertFalse(client.bytes_arrive_within(1.0 * SLOWDOWN), "the server sent something before any request")
            response = client.request(REQUEST)
            self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"), response[:200])
            self.assertTrue(client.tls.session is not None and client.tls.session.has_ticket)
            session = client.tls.session
        finally:
            client.close()
        # the ticket that came with the response resumes the next connection
        again = RawTls(port, ctx, session=session)
        try:
            self.assertTrue(again.tls.session_reused)
            self.assertTrue(again.request(REQUEST).startswith(b"HTTP/1.1 200 OK\r\n"))
        finally:
            again.close()

    def test_tls13_one_ticket_per_connection_and_it_resumes(self):
        # Before: 2 tickets after a full handshake.
        srv, port = self.tls_server("--workers", "1", "--delay", "0")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "session.pem")
            full = s_client(port, "-tls1_3", "-sess_out", path)
            self.assertIn("New, TLSv1.3", full)
            self.assertIn("HTTP/1.1 200 OK", full)
            self.assertEqual(full.count("NewSessionTicket"), 1, full[-3000:])
            resumed = s_client(port, "-tls1_3", "-sess_in", path)
            self.assertIn("Reused, TLSv1.3", resumed)
            self.assertIn("HTTP/1.1 200 OK", resumed)
            self.assertEqual(resumed.count("NewSessionTicket"), 1, resumed[-3000:])

    def test_tls12_sessions_still_resume(self):
        # TLS 1.2 tickets are part of the handshake; the deferred TLS 1.3 ticket must not disturb them.
        srv, port = self.tls_server("--workers", "1", "--delay", "0")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "session.pem")
            full = s_client(port, "-tls1_2", "-sess_out", path)
            self.assertIn("New, TLSv1.2", full)
            self.assertIn("HTTP/1.1 200 OK", full)
            resumed = s_client(port, "-tls1_2", "-sess_in", path)
            self.assertIn("Reused, TLSv1.2", resumed)
            self.assertIn("HTTP/1.1 200 OK", resumed)
