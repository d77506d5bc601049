"""Django's WSGI handler behind the ASGI server, one hop to a thread a request (config/threaded_wsgi.py).
The apps here are small WSGI apps standing in for Django: what is tested is the hand-over."""

import asyncio
import threading

from config.threaded_wsgi import ThreadedWSGI


def serve(app, *, body_chunks=(b"",), disconnect=False):
    """The messages the ASGI server would be sent for one request to `app` behind ThreadedWSGI."""
    sent = []
    chunks = list(body_chunks)

    async def receive():
        if disconnect:
            return {"type": "http.disconnect"}
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": [(b"content-length", str(sum(map(len, body_chunks))).encode())],
    }

    async def scenario():
        await ThreadedWSGI(app, workers=2)(scope, receive, send)

    asyncio.run(scenario())
    return sent


class Response(list):
    """What Django's WSGI handler returns: the response itself, iterable, closed at the end."""

    streaming = False

    def close(self):
        self.closed_in = threading.current_thread()


def test_a_response_is_built_in_a_thread_and_sent_as_its_start_and_its_body():
    ran_in = []

    def app(environ, start_response):
        ran_in.append(threading.current_thread())
        start_response("201 Created", [("Content-Type", "text/plain")])
        return Response([b"made ", b"it"])

    sent = serve(app)

    assert ran_in[0] is not threading.main_thread()
    assert sent == [
        {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]},
        {"type": "http.response.body", "body": b"made it"},
    ]


def test_a_request_body_sent_in_chunks_reaches_the_app_whole():
    def app(environ, start_response):
        start_response("200 OK", [])
        return Response([environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))])

    sent = serve(app, body_chunks=(b'{"action": ', b'"member_added"', b"}"))

    assert sent[1]["body"] == b'{"action": "member_added"}'


def test_a_streaming_response_is_sent_chunk_by_chunk_and_closed_in_the_thread_that_made_it():
    made = []

    class Streaming(Response):
        streaming = True

    def app(environ, start_response):
        made.append(threading.current_thread())
        start_response("200 OK", [])
        response = Streaming([b"id,login\n", b"", b"1,octocat\n"])
        made.append(response)
        return response

    sent = serve(app)

    thread, response = made
    assert [message.get("body") for message in sent] == [None, b"id,login\n", b"1,octocat\n", b""]
    assert [message.get("more_body", False) for message in sent[1:]] == [True, True, False]
    assert response.closed_in is thread


def test_a_client_gone_before_its_body_arrived_is_not_passed_to_django():
    called = []

    def app(environ, start_response):
        called.append(environ)

    assert serve(app, disconnect=True) == []
    assert called == []
