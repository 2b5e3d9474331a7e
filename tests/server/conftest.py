"""Server fixtures: small Spider-like chat JSONL files and a local server at full speed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.server.spec import MISSING, check_response
from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.inprocess import LocalServer, start_local_server

SCHEMA = """CREATE TABLE singer (
  singer_id INTEGER PRIMARY KEY,
  name TEXT,
  country TEXT,
  age INTEGER
);
CREATE TABLE concert (
  concert_id INTEGER PRIMARY KEY,
  concert_name TEXT,
  year INTEGER,
  singer_id INTEGER REFERENCES singer(singer_id)
);"""

PAIRS = [
    ("How many singers are there?", "SELECT count(*) FROM singer"),
    ("List the names of all singers.", "SELECT name FROM singer"),
    ("What is the average age of singers?", "SELECT avg(age) FROM singer"),
    ("Show the countries of singers older than 30.", "SELECT country FROM singer WHERE age > 30"),
    ("How many concerts are there?", "SELECT count(*) FROM concert"),
    ("List concert names in 2014.", "SELECT concert_name FROM concert WHERE year = 2014"),
    ("What is the oldest singer's name?", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
    ("Count singers from France.", "SELECT count(*) FROM singer WHERE country = 'France'"),
    ("List distinct countries of singers.", "SELECT DISTINCT country FROM singer"),
    ("What is the maximum age of singers?", "SELECT max(age) FROM singer"),
    ("What is the minimum age of singers?", "SELECT min(age) FROM singer"),
    ("How many concerts per year?", "SELECT year, count(*) FROM concert GROUP BY year"),
    ("Names of singers who had a concert.",
     "SELECT DISTINCT T1.name FROM singer AS T1 JOIN concert AS T2 "
     "ON T1.singer_id = T2.singer_id"),
    ("Show all concert names ordered by year.", "SELECT concert_name FROM concert ORDER BY year"),
    ("How many singers are younger than 25?", "SELECT count(*) FROM singer WHERE age < 25"),
    ("Which years had concerts?", "SELECT DISTINCT year FROM concert"),
    ("List singer names and ages.", "SELECT name, age FROM singer"),
    ("Count the concerts after 2013.", "SELECT count(*) FROM concert WHERE year > 2013"),
    ("List the names of singers from Japan.", "SELECT name FROM singer WHERE country = 'Japan'"),
    ("What is the total age of all singers?", "SELECT sum(age) FROM singer"),
    ("How many countries do singers come from?", "SELECT count(DISTINCT country) FROM singer"),
    ("Show the youngest singer's country.",
     "SELECT country FROM singer ORDER BY age ASC LIMIT 1"),
    ("List concerts of 2015.", "SELECT concert_name FROM concert WHERE year = 2015"),
    ("Show the number of singers per country.",
     "SELECT country, count(*) FROM singer GROUP BY country"),
]


def chat_lines(pairs: list[tuple[str, str]]) -> bytes:
    """JSONL bytes of chat examples rendered with the one shared prompt renderer."""
    rows = [json.dumps({"messages": render_messages(DEFAULT_TEMPLATE, SCHEMA, q, sql)})
            for q, sql in pairs]
    return ("\n".join(rows) + "\n").encode("utf-8")


@pytest.fixture
def train_bytes() -> bytes:
    """24 training examples."""
    return chat_lines(PAIRS)


@pytest.fixture
def valid_bytes() -> bytes:
    """6 validation examples."""
    return chat_lines(PAIRS[::4])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    """A fresh in-process server at --speed max."""
    with start_local_server(tmp_path / "server", speed="max") as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without the OpenAI spec, skip (at collection, with the reason) every test that checks
    responses against it: marked ``openapi``, or schema-checked through the ``recorder``."""
    if MISSING is None:
        return
    for item in items:
        if item.get_closest_marker("openapi") or "recorder" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=MISSING))


class Recorder:
    """Keeps every JSON response an SDK client received, to validate against the spec."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, Any]] = []
        """(method, path, status, body) of each JSON response."""
        self.statuses: list[int] = []
        """Status of every response, JSON or not."""
        self.without_id: list[str] = []
        """``METHOD path`` of responses that lacked an ``x-request-id``."""

    def _keep(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)
        if not response.headers.get("x-request-id", "").startswith("req_"):
            self.without_id.append(f"{response.request.method} {response.request.url.path}")
        if response.headers.get("content-type", "").startswith("application/json"):
            self.seen.append((response.request.method, response.request.url.path,
                              response.status_code, json.loads(response.content)))

    def sync_hook(self, response: httpx2.Response) -> None:
        """httpx response hook for sync clients."""
        response.read()
        self._keep(response)

    async def async_hook(self, response: httpx2.Response) -> None:
        """httpx response hook for async clients."""
        await response.aread()
        self._keep(response)

    def validate(self) -> set[str]:
        """Check every kept response (and that each had a request id and none was a 409);
        return the schema names exercised."""
        assert not self.without_id, f"responses without x-request-id: {self.without_id}"
        assert 409 not in self.statuses, "a 409 makes the SDK retry a state conflict"
        return {name for method, path, status, body in self.seen
                if (name := check_response(method, path, status, body))}


@pytest.fixture
def recorder() -> Recorder:
    """Records the JSON responses of the ``client``/``aclient`` fixtures."""
    return Recorder()


@pytest.fixture
def client(server: LocalServer, recorder: Recorder) -> Iterator[openai.OpenAI]:
    """The official sync SDK pointed at the server; its JSON responses are schema-checked."""
    http = openai.DefaultHttpxClient(event_hooks={"response": [recorder.sync_hook]})
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0,
                       http_client=http) as sdk:
        yield sdk
    recorder.validate()


@pytest.fixture
async def aclient(server: LocalServer, recorder: Recorder) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official async SDK pointed at the server; its JSON responses are schema-checked."""
    http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [recorder.async_hook]})
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                  max_retries=0, http_client=http) as sdk:
        yield sdk
    recorder.validate()
