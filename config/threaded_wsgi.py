"""Django's WSGI handler served to an ASGI server from a pool of threads, in one hop a request.

a2wsgi, used before, hands the response back to the event loop message by message, and waits in
the thread for each: the start, the body, and the end, three round trips between the thread and the
loop. Each costs a wake-up of both and a hand-over of the GIL; measured, a stream's opening through
Pushpin cost 2.8 ms of CPU that way against 1.5 ms for Django's handler called directly. Here the
thread builds the whole response and the loop sends it. A streaming response (a static file, a CSV
export) is the exception: its chunks are read in the thread that made it, which holds its database
connection until the response is closed, and handed over one by one as a2wsgi did.

The request's body is read on the loop before Django starts, as Django's own ASGI handler does: into
memory, or past FILE_UPLOAD_MAX_MEMORY_SIZE into a temporary file.
"""

import asyncio
import contextvars
import tempfile
from concurrent.futures import ThreadPoolExecutor

from a2wsgi.wsgi import build_environ
from django.conf import settings


class ClientGone(Exception):
    pass


class ThreadedWSGI:
    def __init__(self, app, *, workers: int):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="django")

    async def __call__(self, scope, receive, send):
        try:
            body = await read_body(receive)
        except ClientGone:
            return
        loop = asyncio.get_running_loop()
        environ = build_environ(scope, body)
        respond = contextvars.copy_context().run
        try:
            start, content = await loop.run_in_executor(self.executor, respond, self.respond, environ, loop, send)
        finally:
            body.close()
        if content is not None:
            await send(start)
            await send({"type": "http.response.body", "body": content})

    def respond(self, environ, loop, send):
        """In a thread: the response's start and whole body; or, for a streaming response, None once
        every chunk has been sent."""
        started: dict[str, object] = {}

        def start_response(status, headers, exc_info=None):
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

        response = self.app(environ, start_response)
        try:
            start = {"type": "http.response.start", **started}
            if not getattr(response, "streaming", False):
                return start, b"".join(response)

            def hand_over(message):
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            hand_over(start)
            for chunk in response:
                if chunk:
                    hand_over({"type": "http.response.body", "body": chunk, "more_body": True})
            hand_over({"type": "http.response.body", "body": b""})
            return start, None
        finally:
            # Django's request_finished: the database connection goes back to its pool, in the
            # thread that took it.
            getattr(response, "close", lambda: None)()


async def read_body(receive):
    body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.close()
            raise ClientGone
        body.write(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body.seek(0)
    return body
