"""Model management on an Ollama host (routing.backends.ollama_models) against the Ollama
protocol test server on 127.0.0.1: pull with progress, cancel and resume, delete, show, ps,
unload, and one clear line for each failure. Plain pytest: no Qt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.backends.ollama_models import (
    STARTER_MODELS,
    OllamaModels,
    PullPhase,
    PullProgress,
    PullTracker,
    full_model_name,
)
from halext_desktop.routing.errors import ErrorKind, RouteError
from tests.helpers.aio import run
from tests.servers.ollama_server import DISK_FULL_MESSAGE, OllamaServer

T = TypeVar("T")
MSGS = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer() as s:
        yield s
    assert s.errors == [], s.errors


def with_models(
    url: str, action: Callable[[OllamaModels], Awaitable[T]], *, default: bool = True
) -> T:
    async def scenario() -> T:
        backend = OllamaBackend("studio", url, is_default=default)
        try:
            return await action(OllamaModels(backend))
        finally:
            await backend.aclose()

    return run(scenario())


async def all_progress(stream: AsyncIterator[PullProgress]) -> list[PullProgress]:
    return [p async for p in stream]


def pull_all(url: str, model: str) -> list[PullProgress]:
    return with_models(url, lambda m: all_progress(m.pull(model)))


def failure(fn: Callable[[], object]) -> RouteError:
    with pytest.raises(RouteError) as info:
        fn()
    return info.value


# ---- pull -------------------------------------------------------------------------------------


def test_pull_reports_each_layer_then_success_and_installs(server: OllamaServer) -> None:
    sizes = server.layer_sizes("tinyllama")
    steps = pull_all(server.url, "tinyllama")
    phases = [p.phase for p in steps]
    assert phases[0] is PullPhase.MANIFEST
    assert phases[-3:] == [PullPhase.VERIFYING, PullPhase.WRITING, PullPhase.DONE]
    assert steps[-1].done and not any(p.done for p in steps[:-1])
    last_download = [p for p in steps if p.phase is PullPhase.DOWNLOADING][-1]
    assert {layer.digest: layer.total for layer in last_download.layers} == sizes
    assert last_download.completed == last_download.total == sum(sizes.values())
    assert last_download.percent == 100.0 and last_download.resumed_bytes == 0
    # Progress never goes backwards.
    completed = [p.completed for p in steps if p.phase is PullPhase.DOWNLOADING]
    assert completed == sorted(completed)
    assert steps[-1].installed_name == "tinyllama:latest"
    assert server.find("tinyllama") is not None
    body = server.requests_to("/api/pull")[0].json
    assert body == {"model": "tinyllama", "stream": True}


def test_pulling_an_installed_model_reports_every_layer_whole(server: OllamaServer) -> None:
    steps = pull_all(server.url, "llama3.2")
    downloads = [p for p in steps if p.phase is PullPhase.DOWNLOADING]
    assert downloads and all(layer.done for layer in downloads[-1].layers)
    assert downloads[-1].resumed_bytes == 0  # reused layers are not a resumed download
    assert steps[-1].done


def test_a_cancelled_pull_closes_the_stream_and_the_next_pull_resumes(
    server: OllamaServer,
) -> None:
    pause = server.pause_after(4)

    async def pull_then_cancel(models: OllamaModels) -> PullProgress:
        stream = models.pull("tinyllama")
        seen: list[PullProgress] = []

        async def consume() -> None:
            async for p in stream:
                seen.append(p)

        task = asyncio.ensure_future(consume())
        while not pause.reached.is_set():
            await asyncio.sleep(0.01)
        while len(seen) < 4:
            await asyncio.sleep(0.01)
        task.cancel()  # what Cancel does: the task holding the stream is cancelled
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen[-1]

    before = with_models(server.url, pull_then_cancel)
    server.wait_closed_early()
    assert before.phase is PullPhase.DOWNLOADING and 0 < before.completed < before.total
    assert server.find("tinyllama") is None
    on_disk = server.downloaded_bytes("tinyllama")
    assert on_disk >= before.completed

    again = pull_all(server.url, "tinyllama")
    first_download = next(p for p in again if p.phase is PullPhase.DOWNLOADING)
    assert first_download.resumed_bytes == on_disk
    assert first_download.completed == on_disk
    assert again[-1].done and server.find("tinyllama") is not None


def test_an_unknown_model_is_one_clear_line(server: OllamaServer) -> None:
    err = failure(lambda: pull_all(server.url, "no-such-model"))
    assert err.kind is ErrorKind.MODEL_NOT_FOUND
    assert "no model named 'no-such-model'" in err.message
    assert "ollama.com/library" in err.hint
    assert err.route_id == "ollama"


def test_a_bad_name_is_refused_before_streaming(server: OllamaServer) -> None:
    err = failure(lambda: pull_all(server.url, "bad/Name!"))
    assert (err.kind, err.status) == (ErrorKind.BAD_REQUEST, 400)
    assert err.message == "'bad/Name!' is not a valid model name"
    blank = failure(lambda: pull_all(server.url, "  "))
    assert blank.kind is ErrorKind.BAD_REQUEST and "No model name" in blank.message
    assert len(server.requests_to("/api/pull")) == 1  # the blank name was never sent


def test_a_full_disk_says_so_and_that_the_pull_will_resume(server: OllamaServer) -> None:
    server.error_after(5, DISK_FULL_MESSAGE.format(digest="0" * 64), path="/api/pull")
    err = failure(lambda: pull_all(server.url, "tinyllama"))
    assert err.kind is ErrorKind.SERVER
    assert err.message.startswith(f"The disk of the Ollama host 127.0.0.1:{server.port} is full")
    assert "resumes" in err.hint
    assert server.find("tinyllama") is None


def test_a_host_that_is_down_is_named(server: OllamaServer) -> None:
    server.stop()
    err = failure(lambda: pull_all(server.url, "tinyllama"))
    assert err.kind is ErrorKind.CONNECTION
    assert f"Connection refused at 127.0.0.1:{server.port}" in err.message
    assert "ollama serve" in err.hint


def test_a_connection_cut_mid_pull_is_a_dropped_stream(server: OllamaServer) -> None:
    server.drop_after(3, path="/api/pull")
    err = failure(lambda: pull_all(server.url, "tinyllama"))
    assert err.kind is ErrorKind.STREAM_DROPPED
    assert "stopped before it finished" in err.message and "resumes" in err.hint


def test_a_redirect_is_an_error_that_names_where_it_pointed(server: OllamaServer) -> None:
    server.redirect_next("https://login.example.com/", path="/api/pull")
    err = failure(lambda: pull_all(server.url, "tinyllama"))
    assert err.kind is ErrorKind.REDIRECT and "not followed" in err.message
    assert "https://login.example.com/" in err.message
    assert len(server.requests) == 1  # the redirect was not followed
    server.redirect_next("http://elsewhere.invalid/api/delete", path="/api/delete")
    err = failure(lambda: with_models(server.url, lambda m: m.delete("llama3.2")))
    assert "http://elsewhere.invalid/api/delete" in err.message
    assert server.find("llama3.2") is not None


def test_speed_and_time_left_come_from_the_bytes_of_this_pull() -> None:
    now = [100.0]
    tracker = PullTracker("ollama", "m", clock=lambda: now[0])
    digest = "sha256:" + "a" * 64
    tracker.feed({"status": "pulling manifest"}, where="h")
    # Resumed: 400 of 1000 bytes were on disk.
    p = tracker.feed({"status": "pulling aaa", "digest": digest, "total": 1000, "completed": 400},
                     where="h")  # fmt: skip
    assert (p.resumed_bytes, p.completed, p.bytes_per_second, p.eta_seconds) == (
        400,
        400,
        None,
        None,
    )
    now[0] += 2.0
    p = tracker.feed({"status": "pulling aaa", "digest": digest, "total": 1000, "completed": 600},
                     where="h")  # fmt: skip
    assert p.bytes_per_second == pytest.approx(100.0)
    assert p.eta_seconds == pytest.approx(4.0)
    assert p.percent == pytest.approx(60.0)
    p = tracker.feed({"status": "verifying sha256 digest"}, where="h")
    assert p.phase is PullPhase.VERIFYING and p.percent == 100.0 and p.eta_seconds is None
    with pytest.raises(RouteError) as info:
        tracker.feed({"error": "pull model manifest: file does not exist"}, where="h")
    assert info.value.kind is ErrorKind.MODEL_NOT_FOUND


def test_full_names_and_the_starter_list() -> None:
    assert full_model_name("llama3.2") == "llama3.2:latest"
    assert full_model_name("hf.co/org/repo:Q4") == "hf.co/org/repo:Q4"
    assert full_model_name("hf.co/org/repo") == "hf.co/org/repo:latest"
    assert len({s.name for s in STARTER_MODELS}) == len(STARTER_MODELS) >= 4
    assert all(0 < s.size_bytes < 4_000_000_000 for s in STARTER_MODELS)


# ---- delete, show, ps, unload -------------------------------------------------------------------


def test_delete_frees_the_model_and_a_second_delete_is_not_found(server: OllamaServer) -> None:
    size = server.find("qwen2.5:7b").size  # type: ignore[union-attr]
    freed = with_models(server.url, lambda m: m.delete("qwen2.5:7b"))
    assert freed == size
    assert server.find("qwen2.5:7b") is None
    rec = server.requests_to("/api/delete")[0]
    assert (rec.method, rec.json) == ("DELETE", {"model": "qwen2.5:7b"})
    err = failure(lambda: with_models(server.url, lambda m: m.delete("qwen2.5:7b")))
    assert err.kind is ErrorKind.MODEL_NOT_FOUND
    assert err.message == f"'qwen2.5:7b' is not installed on 127.0.0.1:{server.port}"


def test_show_gives_the_model_card(server: OllamaServer) -> None:
    card = with_models(server.url, lambda m: m.show("qwen2.5:7b"), default=False)
    spec = server.find("qwen2.5:7b")
    assert spec is not None
    assert str(card.ref) == "ollama@studio/qwen2.5:7b"
    assert card.context_length == spec.context_length
    assert card.embedding_length == spec.embedding_length
    assert card.capabilities == spec.capabilities
    assert card.family == spec.family and card.parameter_size == spec.parameter_size
    assert card.quantization == spec.quantization_level
    assert card.license == spec.show()["license"] and card.template == spec.show()["template"]
    assert card.parameter_pairs() == [("num_keep", "24"), ("stop", '"<|eot_id|>"')]
    assert card.parameter_count == 7_600_000_000
    assert card.modified_at is not None and card.modified_at.year == 2025
    err = failure(lambda: with_models(server.url, lambda m: m.show("ghost")))
    assert err.kind is ErrorKind.MODEL_NOT_FOUND and "'ghost' is not installed" in err.message


def test_ps_lists_what_is_loaded_and_unload_frees_it(server: OllamaServer) -> None:
    import ollama

    with ollama.Client(host=server.url, timeout=5) as client:
        client.chat(model="qwen2.5:7b", messages=MSGS, keep_alive=-1)
        client.embed(model="nomic-embed-text", input="hello")
    loaded = with_models(server.url, lambda m: m.loaded())
    by_name = {m.name: m for m in loaded}
    assert list(by_name) == ["qwen2.5:7b", "nomic-embed-text:latest"]
    qwen = by_name["qwen2.5:7b"]
    assert qwen.stays_loaded and qwen.size_bytes == server.find("qwen2.5:7b").size  # type: ignore[union-attr]
    assert qwen.gpu_fraction == 1.0 and qwen.context_length == 4096
    assert not by_name["nomic-embed-text:latest"].stays_loaded
    assert qwen.family == "qwen2" and str(qwen.ref) == "ollama/qwen2.5:7b"

    with_models(server.url, lambda m: m.unload("nomic-embed-text:latest"))
    assert server.loaded() == ["qwen2.5:7b"]
    rec = server.requests_to("/api/generate")[-1]
    assert rec.json == {"model": "nomic-embed-text:latest", "keep_alive": 0, "stream": False}
    with_models(server.url, lambda m: m.unload("qwen2.5:7b"))
    assert with_models(server.url, lambda m: m.loaded()) == []
