"""Every bad input answered: generated damage to real catalog files, and a real HTTP server that
answers the remote LLM backend badly in generated ways. Each case must end in a result that holds
together or in the project's own error with a one-line message; never a traceback, never a hang.

The catalog starts as a slice of MovieLens in the generic format; the server is a plain
`ThreadingHTTPServer` on 127.0.0.1 that writes raw bytes, so it can break HTTP itself.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crs.cli import main
from crs.data import DataError
from crs.data.generic import INTERACTIONS_FILE, ITEMS_FILE, USERS_FILE, load_generic, validate_generic
from crs.data.location import resolve_data_dir
from crs.llm import GenerationRequest, LLMError, Message
from crs.llm.remote import MAX_ANSWER_BYTES, RemoteBackend

MANY = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FEW = settings(MANY, max_examples=8)

# --- a small real catalog in the generic format ---------------------------------------------------


def _movielens_catalog() -> dict[str, bytes]:
    """items, interactions and users of 30 MovieLens movies: ids of both JSON types, both forms of
    attributes, facts and text, all three splits, friends."""
    source = resolve_data_dir() / "movielens-small"
    with (source / "movies.csv").open(encoding="utf-8", newline="") as handle:
        movies = list(itertools.islice(csv.DictReader(handle), 30))
    items, ids = [], {}
    for n, movie in enumerate(movies):
        item_id: int | str = int(movie["movieId"]) if n % 3 else f"ml{movie['movieId']}"
        ids[movie["movieId"]] = item_id
        genres = [g for g in movie["genres"].split("|") if g != "(no genres listed)"]
        title = movie["title"]
        item: dict[str, Any] = {"id": item_id, "title": title}
        item["attributes"] = [g.lower() for g in genres] if n % 4 == 0 else {"genre": genres}
        if title.rstrip().endswith(")"):
            item["facts"] = {"year": int(title.rstrip()[-5:-1]) if title.rstrip()[-5:-1].isdigit() else 0}
        if n % 5 == 0:
            item["text"] = f"{title}, a film of {len(genres)} genres."
        items.append(item)
    rows, users = [], []
    with (source / "ratings.csv").open(encoding="utf-8", newline="") as handle:
        for rating in csv.DictReader(handle):
            if rating["movieId"] in ids:
                split = ("train", "train", "valid", "test", "")[len(rows) % 5]
                rows.append(f"{rating['userId']},{ids[rating['movieId']]},{split}")
            if len(rows) == 40:
                break
    people = sorted({row.split(",")[0] for row in rows}, key=int)
    for n, person in enumerate(people):
        users.append({"id": person, "friends": people[n + 1 : n + 3]})
    return {
        ITEMS_FILE: "".join(json.dumps(item) + "\n" for item in items).encode(),
        INTERACTIONS_FILE: ("user_id,item_id,split\n" + "\n".join(rows) + "\n").encode(),
        USERS_FILE: "".join(json.dumps(user) + "\n" for user in users).encode(),
    }


BASE = _movielens_catalog()
FILES = (ITEMS_FILE, INTERACTIONS_FILE, USERS_FILE)
SNIPPETS = (
    b"\xff",  # never UTF-8
    b"\xc3",  # a sequence cut short
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xef\xbb\xbf",  # a BOM in the middle
    b"\x00",
    b"\r",
    b"\n",
    b'"',
    b",",
    b"{",
    b"[",
    b"\\",
    b"\xe2\x80\xa8",  # LINE SEPARATOR: a line break for str.splitlines, not for files
)


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**30, max_value=10**60),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.sampled_from(["", "  ", "train", "test", "1", "ml1", "u", "\u2028", "a\nb"]),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )


def _nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


DEPTHS = st.sampled_from([2, 50, 500, 900, 950, 975, 990, 1000, 1100, 3000, 100_000])


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(
        st.sampled_from(
            [
                "delete_line",
                "duplicate_line",
                "swap_lines",
                "flip_byte",
                "truncate",
                "insert",
                "json_field",
                "json_field",
                "json_field",
                "deep",
                "csv_row",
                "csv_row",
                "csv_header",
                "huge",
                "file",
            ]
        )
    )
    name = draw(st.sampled_from(FILES))
    where = draw(st.integers(min_value=0, max_value=10**6))
    if kind in ("delete_line", "duplicate_line", "truncate"):
        return (kind, name, where)
    if kind == "swap_lines":
        return (kind, name, where, draw(st.integers(min_value=0, max_value=10**6)))
    if kind == "flip_byte":
        return (kind, name, where, draw(st.integers(min_value=1, max_value=255)))
    if kind == "insert":
        return (kind, name, where, draw(st.sampled_from(SNIPPETS) | st.binary(min_size=1, max_size=8)))
    if kind == "json_field":
        key = draw(
            st.sampled_from(["id", "title", "attributes", "facts", "text", "friends", "atributes", "genre"])
        )
        return (kind, draw(st.sampled_from([ITEMS_FILE, USERS_FILE])), where, key, draw(_json_values()))
    if kind == "deep":
        key = draw(st.sampled_from([None, "id", "title", "attributes", "facts", "friends"]))
        return (kind, draw(st.sampled_from([ITEMS_FILE, USERS_FILE])), where, key, draw(DEPTHS))
    if kind == "csv_row":
        field = st.one_of(
            st.sampled_from(["", " ", "1", "ml1", "2", "999999", "train", "valid", "test", "later", "1"]),
            st.just("9" * 5000),
            st.text(max_size=8),
        )
        fields = draw(st.lists(field, max_size=5))
        return (kind, INTERACTIONS_FILE, where, tuple(fields), draw(st.sampled_from(["csv", "raw", "quote"])))
    if kind == "csv_header":
        header = draw(
            st.sampled_from(
                [
                    "user_id,item_id",
                    "user_id,item_id,split,extra",
                    "item_id,user_id",
                    '"user_id\nitem",item_id',
                    "\ufeffuser_id,item_id,split",
                    " user_id , item_id ",
                    "",
                    "user_id;item_id",
                ]
            )
            | st.text(max_size=20)
        )
        return (kind, INTERACTIONS_FILE, header)
    if kind == "huge":
        return (kind, name, where, draw(st.sampled_from([10_000, 140_000, 1_000_000])))
    return (kind, name, draw(st.sampled_from(["delete", "empty", "folder", "dangling", "blank"])))


def _apply(folder: Path, mutation: tuple[Any, ...]) -> None:
    kind, name = mutation[0], mutation[1]
    path = folder / name
    if kind == "file":
        _remove(path)
        action = mutation[2]
        if action == "empty":
            path.write_bytes(b"")
        elif action == "blank":
            path.write_bytes(b"\n \n\t\n")
        elif action == "folder":
            path.mkdir()
        elif action == "dangling":
            path.symlink_to(folder / "nowhere")
        return
    if not path.is_file():
        return
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    where = mutation[2] if kind != "csv_header" else 0
    at = where % (len(lines) or 1)
    if kind == "delete_line" and lines:
        del lines[at]
    elif kind == "duplicate_line" and lines:
        lines.insert(at, lines[at])
    elif kind == "swap_lines" and lines:
        other = mutation[3] % len(lines)
        lines[at], lines[other] = lines[other], lines[at]
    elif kind == "flip_byte" and data:
        position = where % len(data)
        data = data[:position] + bytes([data[position] ^ mutation[3]]) + data[position + 1 :]
        lines = [data]
    elif kind == "truncate":
        lines = [data[: where % (len(data) + 1)]]
    elif kind == "insert":
        position = where % (len(data) + 1)
        lines = [data[:position] + mutation[3] + data[position:]]
    elif kind in ("json_field", "deep") and lines:
        try:
            entry = json.loads(lines[at])
        except (ValueError, RecursionError):
            entry = None
        if kind == "deep" and (mutation[3] is None or not isinstance(entry, dict)):
            text = _nested(mutation[4])
        elif isinstance(entry, dict):
            value = _nested(mutation[4]) if kind == "deep" else json.dumps(mutation[4])
            entry.pop(mutation[3], None)
            body = json.dumps(entry)[1:-1]
            text = "{" + body + (", " if body.strip() else "") + json.dumps(mutation[3]) + ": " + value + "}"
        else:
            return
        lines[at] = text.encode("utf-8", "surrogatepass") + b"\n"
    elif kind == "csv_row":
        fields, style = mutation[3], mutation[4]
        if style == "csv":
            buffer = io.StringIO()
            csv.writer(buffer).writerow(fields)
            row = buffer.getvalue()
        elif style == "quote":
            row = ",".join(fields) + ',"unterminated\n'
        else:
            row = ",".join(fields) + "\n"
        lines.insert(max(at, 1), row.encode("utf-8", "surrogatepass"))
    elif kind == "csv_header":
        row = mutation[2].encode("utf-8", "surrogatepass") + b"\n"
        lines = [row, *lines[1:]]
    elif kind == "huge" and lines:
        size = mutation[3]
        filler = b'{"id": 77, "title": "' + b"x" * size + b'", "attributes": ["a"]}\n'
        lines[at] = filler if name != INTERACTIONS_FILE else b"u1," + b"7" * size + b",train\n"
    path.write_bytes(b"".join(lines))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _one_line(text: str, limit: int) -> bool:
    return len(text.splitlines()) == 1 and len(text) <= limit


def _check_dataset(folder: Path) -> None:
    dataset = load_generic(folder)
    catalog = dataset.catalog
    assert catalog.n_items >= 1 and catalog.n_attributes >= 1
    assert len({str(item.id) for item in catalog.items}) == catalog.n_items
    for position, item in enumerate(catalog.items):
        assert item.index == position and item.title == item.title.strip() and item.title
        assert list(item.attributes) == sorted(set(item.attributes))
        assert all(0 <= a < catalog.n_attributes for a in item.attributes)
        assert all(isinstance(name, str) and isinstance(value, str) for name, value in item.facts)
    assert [a.index for a in catalog.attributes] == list(range(catalog.n_attributes))
    assert "train" in dataset.splits and set(dataset.splits) <= {"train", "valid", "test"}
    seen: dict[tuple[object, int], str] = {}
    for name, split in dataset.splits.items():
        for user, item_index in split.pairs():
            assert 0 <= item_index < catalog.n_items and user in dataset.users
            assert seen.setdefault((user, item_index), name) == name  # no pair in two splits
    for user_id, user in dataset.users.items():
        assert user.id == user_id and all(friend in dataset.users for friend in user.friends)


_cases = itertools.count()


@pytest.fixture(scope="module")
def catalog_root() -> Iterator[Path]:
    # One folder reused by every example: hypothesis runs many examples in one test call, and
    # pytest's tmp_path is made once per call.
    with tempfile.TemporaryDirectory(prefix="crs-props-") as root:
        yield Path(root)


@MANY
@given(mutations=st.lists(_mutations(), min_size=1, max_size=3))
def test_damaged_catalogs_load_or_name_each_problem(
    catalog_root: Path, mutations: list[tuple[Any, ...]]
) -> None:
    folder = catalog_root / "films"
    _remove(folder)
    folder.mkdir()
    for name, data in BASE.items():
        (folder / name).write_bytes(data)
    for mutation in mutations:
        _apply(folder, mutation)
    sizes = {p.name: len(p.read_bytes().splitlines()) for p in folder.iterdir() if p.is_file()}

    problems = validate_generic(folder)
    for problem in problems:
        assert problem.path == folder / problem.path.name, problem
        assert problem.line is None or 1 <= problem.line <= sizes.get(problem.path.name, 0) + 1, problem
        assert _one_line(str(problem), 600), str(problem)[:2000]
    event("problems" if problems else "loaded")
    if problems:
        with pytest.raises(DataError) as caught:
            load_generic(folder)
        assert caught.value.path == folder
        assert f"{len(problems)} problem" in str(caught.value).splitlines()[0]
    else:
        _check_dataset(folder)
    if next(_cases) % 8 == 0:  # a share of the cases through the command line, in process
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["data", "validate", str(folder)])
        assert (code, err.getvalue()) == (1 if problems else 0, "")
        assert len(out.getvalue().splitlines()) == 1 + len(problems)


def test_the_starting_catalog_is_valid(catalog_root: Path) -> None:
    folder = catalog_root / "clean"
    folder.mkdir(exist_ok=True)
    for name, data in BASE.items():
        (folder / name).write_bytes(data)
    assert validate_generic(folder) == []
    dataset = load_generic(folder)
    assert dataset.catalog.n_items == 30 and set(dataset.splits) == {"train", "valid", "test"}


# --- the remote LLM backend against a server that answers badly ----------------------------------


@dataclass(frozen=True)
class Reply:
    """Raw bytes a request is answered with, written chunk by chunk; then the connection closes."""

    chunks: tuple[bytes, ...]
    pause_s: float = 0.0


REPLIES: dict[str, Reply] = {}
_keys = itertools.count()


class RawHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        self.rfile.read(int(length) if length and length.isdigit() else 0)
        parts = self.path.split("/")
        reply = REPLIES.get(parts[2] if len(parts) > 2 else "", Reply((b"HTTP/1.1 404 No\r\n\r\n",)))
        try:
            for n, chunk in enumerate(reply.chunks):
                if n and reply.pause_s:
                    time.sleep(reply.pause_s)
                self.wfile.write(chunk)
        except OSError:
            pass  # the backend gave up and closed: what a timeout or the size cap should do
        self.close_connection = True

    do_GET = do_POST  # a redirect of a POST comes back as a GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), RawHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _register(reply: Reply) -> str:
    key = f"k{next(_keys)}"
    REPLIES[key] = reply
    return key


def _answer(chat: bool, text: str) -> dict[str, Any]:
    choice: dict[str, Any] = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
    return {"choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}


@st.composite
def _bodies(draw: st.DrawFn, chat: bool) -> tuple[bytes, str | None]:
    """A body, and the text a backend must return when it comes whole with a 200."""
    kind = draw(
        st.sampled_from(
            [
                "ok",
                "ok",
                "other_kind",
                "mutated",
                "mutated",
                "mutated",
                "json",
                "error",
                "garbage",
                "deep",
                "bigint",
            ]
        )
    )
    text = draw(st.text(max_size=20))
    if kind == "ok":
        return json.dumps(_answer(chat, text)).encode(), text
    if kind == "other_kind":
        return json.dumps(_answer(not chat, text)).encode(), None
    if kind == "mutated":
        answer = _answer(chat, text)
        value = draw(_json_values())
        target = draw(
            st.sampled_from(["top", "choices", "choice", "inner", "usage", "count", "drop", "list"])
        )
        choice = answer["choices"][0]
        if target == "top":
            answer = value
        elif target == "choices":
            answer["choices"] = value
        elif target == "choice":
            answer["choices"] = [value, choice]
        elif target == "inner":
            if chat:
                choice["message"]["content"] = value
            else:
                choice["text"] = value
        elif target == "usage":
            answer["usage"] = value
        elif target == "count":
            answer["usage"]["prompt_tokens"] = value
        elif target == "drop":
            choice.pop("message" if chat else "text")
        else:
            answer["choices"] = [[choice]]
        return json.dumps(answer).encode("utf-8", "surrogatepass"), None
    if kind == "json":
        return json.dumps(draw(_json_values())).encode("utf-8", "surrogatepass"), None
    if kind == "error":
        return json.dumps({"error": draw(_json_values())}).encode("utf-8", "surrogatepass"), None
    if kind == "garbage":
        raw = draw(st.binary(max_size=64) | st.sampled_from(SNIPPETS))
        good = json.dumps(_answer(chat, "x")).encode()
        return draw(st.sampled_from([raw, good[:10] + raw + good[10:], good.decode().encode("utf-16")])), None
    if kind == "deep":
        return _nested(draw(DEPTHS)).encode(), None
    return b'{"choices": [{"text": "x"}], "usage": {"prompt_tokens": ' + b"9" * 5000 + b"}}", None


STATUSES = st.sampled_from(
    [200] * 24
    + [201, 204, 100, 101, 103, 301, 302, 303, 307, 308, 400, 401, 404, 413, 418, 429]
    + [500, 502, 503, 599, 600, 999]
)


@st.composite
def _replies(draw: st.DrawFn, chat: bool, base: str) -> tuple[Reply, str | None]:
    body, expected = draw(_bodies(chat))
    code = draw(STATUSES)
    reason = draw(st.sampled_from([b"OK", b"", b"Weird \x85 reason", b"\xff\xfe"]))
    # Weighted so that most replies are HTTP that holds together and the body is what is tested.
    broken = draw(st.sampled_from(["", "", "", "", "", "", "", "status", "headers", "framing"]))
    status = b"HTTP/1.1 %d %s\r\n" % (code, reason)
    if broken == "status":
        status = draw(
            st.sampled_from(
                [
                    b"HTTP/1.0 %d %s\r\n" % (code, reason),
                    b"HTTP/9.9 200 OK\r\n",
                    b"ICY 200 OK\r\n",
                    b"\r\n",
                    b"",
                ]
            )
            | st.binary(max_size=30).map(lambda garbage: garbage + b"\r\n")
        )
    content_type = draw(
        st.sampled_from(
            [
                b"application/json",
                b"text/html; charset=latin-1",
                None,
                b"application/json; charset=utf-16",
                b"\xff",
            ]
        )
    )
    framing = draw(st.sampled_from(["length", "length", "none", "chunked"]))
    if broken == "framing":
        framing = draw(st.sampled_from(["bad_chunked", "short", "long", "bad_length"]))
    headers = [b"Connection: close"]
    if content_type is not None:
        headers.append(b"Content-Type: " + content_type)
    if 300 <= code < 400:
        target = draw(
            st.sampled_from(
                ["ok", "self", "none", "http://[::1", "http://127.0.0.1:99999/", "file:///etc/passwd"]
            )
        )
        if target == "ok":
            location = f"/c/{_register(Reply((_raw(200, json.dumps(_answer(chat, 'moved')).encode()),)))}/x"
            headers.append(b"Location: " + location.encode())
        elif target == "self":
            headers.append(b"Location: " + base.encode())
        elif target != "none":
            headers.append(b"Location: " + target.encode())
    extra = draw(st.sampled_from(["long", "many", "no_colon", "folded"])) if broken == "headers" else None
    if extra == "long":
        headers.append(b"X-Long: " + b"a" * 70_000)
    elif extra == "many":
        headers.extend(b"X-%d: 1" % n for n in range(120))
    elif extra == "no_colon":
        headers.append(b"this is not a header")
    elif extra == "folded":
        headers.append(b"X-Folded: one\r\n two")
    if framing in ("length", "short", "long", "bad_length"):
        length = {"length": len(body), "short": max(len(body) - 3, 0), "long": len(body) + 50}.get(framing)
        headers.append(b"Content-Length: " + (str(length).encode() if length is not None else b"-7x"))
    elif framing in ("chunked", "bad_chunked"):
        headers.append(b"Transfer-Encoding: chunked")
        if framing == "chunked":
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        else:
            body = draw(st.sampled_from([b"zz\r\n", b"%x\r\n" % (len(body) + 9), b"5\r\nab"])) + body
    message = status + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    cut = draw(st.sampled_from([None] * 9 + [0]))
    if cut is not None:
        cut = draw(st.integers(min_value=0, max_value=len(message)))
    if cut is not None:
        message = message[:cut]
    whole = (
        status.startswith(b"HTTP/1.")
        and code in (200, 201)
        and extra in (None, "folded")
        and framing in ("length", "none", "chunked")
        and cut is None
    )
    return Reply((message,)), expected if whole else None


def _raw(code: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n\r\n%s" % (code, len(body), body)


def _request(chat: bool) -> GenerationRequest:
    if chat:
        return GenerationRequest(messages=(Message("user", "Do you like pop?"),))
    return GenerationRequest(prompt="Q: Do you like pop?\nA:")


def _outcome(backend: RemoteBackend, request: GenerationRequest) -> tuple[str | None, str | None, float]:
    """(text, error message, seconds) of one generation."""
    started = time.perf_counter()
    try:
        text: str | None = backend.generate(request).text
        error = None
    except LLMError as failure:
        text, error = None, str(failure)
    return text, error, time.perf_counter() - started


def _answered_properly(error: str | None) -> None:
    if error is not None:
        assert _one_line(error, 1000), error[:3000]
        assert error.startswith(("the LLM server at ", "could not reach the LLM server at ")), error


@MANY
@given(data=st.data(), chat=st.booleans(), retries=st.sampled_from([0, 0, 0, 1]))
def test_bad_answers_give_one_line_errors(server: str, data: st.DataObject, chat: bool, retries: int) -> None:
    key = f"k{next(_keys)}"
    base = f"{server}/c/{key}"
    reply, expected = data.draw(
        _replies(chat, base + "/v1/" + ("chat/completions" if chat else "completions"))
    )
    REPLIES[key] = reply
    timeout = 5.0  # far above a case's few ms, also on a loaded machine
    backend = RemoteBackend(base, timeout_s=timeout, retries=retries, backoff_s=0.001, environ={})
    text, error, seconds = _outcome(backend, _request(chat))
    _answered_properly(error)
    event("text" if error is None else error.split("completions", 1)[1][:22])
    if expected is not None:
        assert (text, error) == (expected, None)
    # Every reply closes its connection, so nothing here should wait for the timeout.
    assert seconds < timeout, (seconds, error)
    del REPLIES[key]


@FEW
@given(
    phase=st.sampled_from(["body", "headers", "silent", "status"]),
    pause=st.sampled_from([0.05, 0.15]),
    retries=st.sampled_from([0, 1]),
)
def test_a_server_that_drips_bytes_is_cut_at_the_timeout(
    server: str, phase: str, pause: float, retries: int
) -> None:
    body = json.dumps(_answer(False, "slow")).encode()
    if phase == "body":
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        chunks = (head, *(body[n : n + 1] for n in range(len(body))))
    elif phase == "headers":
        chunks = (b"HTTP/1.1 200 OK\r\n", *(b"X-Slow-%d: 1\r\n" % n for n in range(60)))
    elif phase == "status":
        chunks = tuple(bytes([byte]) for byte in b"HTTP/1.1 200 OK\r\n" * 4)
    else:
        chunks = (b"", b"")
        pause = 3.0
    key = _register(Reply(chunks, pause_s=pause))
    timeout = 0.4
    backend = RemoteBackend(
        f"{server}/c/{key}", timeout_s=timeout, retries=retries, backoff_s=0.01, environ={}
    )
    text, error, seconds = _outcome(backend, _request(False))
    assert text is None and error is not None and "timed out" in error, error
    _answered_properly(error)
    tries = retries + 1
    assert seconds < tries * (timeout + 0.25) + 0.05, seconds


@pytest.mark.parametrize("framing", ["length", "none", "chunked"])
def test_a_huge_answer_is_refused_at_the_cap(server: str, framing: str) -> None:
    size = 30 * 2**20
    filler = b'{"choices": [{"text": "' + b"a" * size + b'"}]}'
    if framing == "length":
        message = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(filler), filler)
    elif framing == "none":
        message = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + filler
    else:
        message = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            len(filler),
            filler,
        )
    key = _register(Reply((message,)))
    backend = RemoteBackend(f"{server}/c/{key}", timeout_s=10, retries=0, environ={})
    text, error, _ = _outcome(backend, _request(False))
    assert text is None and error is not None and "larger than 16 MiB" in error
    _answered_properly(error)


def test_an_answer_just_under_the_cap_is_read(server: str) -> None:
    start, end = b'{"choices": [{"text": "', b'"}]}'
    text = b"b" * (MAX_ANSWER_BYTES - len(start) - len(end))
    key = _register(Reply((_raw(200, start + text + end),)))
    answer = RemoteBackend(f"{server}/c/{key}", timeout_s=10, retries=0, environ={}).generate(_request(False))
    assert answer.text == text.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://", "names no host"),
        ("http://[::1/v1", "malformed"),
        ("http://127.0.0.1:99999/v1", "malformed"),
        ("ftp://127.0.0.1/v1", "must start with http"),
    ],
)
def test_a_malformed_url_is_refused_when_the_backend_is_made(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RemoteBackend(url, environ={})
