"""The Ollama test server, proven against the real ``ollama`` (0.6.3) and ``openai`` clients and
against raw HTTP where the wire format itself is the contract (ollama-protocol.md §7)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import ollama
import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.servers.ollama_server import (
    BUSY_MESSAGE,
    DISK_FULL_MESSAGE,
    MIDSTREAM_MESSAGE,
    ModelSpec,
    OllamaServer,
    prompt_tokens,
    reply_text,
    tokenize,
)

MSGS = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "why is the sky blue"},
]
# The same messages, typed as the openai client's parameters.
OAI_MSGS: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "why is the sky blue"},
]


@pytest.fixture
def client(ollama_server: OllamaServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=ollama_server.url, timeout=5) as c:
        yield c


@pytest.fixture
def http(ollama_server: OllamaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ollama_server.url, timeout=5) as c:
        yield c


@pytest.fixture
def oai(ollama_server: OllamaServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=ollama_server.url + "/v1", api_key="ollama", max_retries=0, timeout=5
    ) as c:
        yield c


def ndjson(response: httpx.Response) -> list[dict]:
    lines = response.text.split("\n")
    assert lines[-1] == "", "every line must be newline-terminated"
    assert all(lines[:-1]), "no blank lines in NDJSON"
    return [json.loads(line) for line in lines[:-1]]


# ---- basics -------------------------------------------------------------------------------------


def test_root_get_and_head_say_ollama_is_running(http: httpx.Client) -> None:
    r = http.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert r.headers["content-type"].startswith("text/plain")
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""


def test_version_is_the_configured_one() -> None:
    with OllamaServer(version="9.8.7") as server, httpx.Client(timeout=5) as http:
        assert http.get(server.url + "/api/version").json() == {"version": "9.8.7"}


def test_unknown_route_and_wrong_method_are_gins_plain_text_404(http: httpx.Client) -> None:
    for r in (http.get("/api/nope"), http.get("/api/chat"), http.post("/v1/nothing", json={})):
        assert (r.status_code, r.text) == (404, "404 page not found")
        assert r.headers["content-type"] == "text/plain"


def test_unknown_route_through_the_client_is_response_error_404(
    ollama_server: OllamaServer,
) -> None:
    with (
        ollama.Client(host=ollama_server.url + "/v1", timeout=5) as c,
        pytest.raises(ollama.ResponseError) as info,
    ):
        c.list()
    assert (info.value.error, info.value.status_code) == ("404 page not found", 404)


# ---- models -------------------------------------------------------------------------------------


def test_tags_has_name_and_model_details_and_nanosecond_timestamps(
    http: httpx.Client, client: ollama.Client, ollama_server: OllamaServer
) -> None:
    raw = http.get("/api/tags").json()["models"]
    assert (
        [m["name"] for m in raw]
        == [m["model"] for m in raw]
        == [s.name for s in ollama_server.models]
    )
    first = raw[0]
    assert isinstance(first["size"], int) and len(first["digest"]) == 64
    assert set(first["details"]) >= {"family", "parameter_size", "quantization_level", "format"}
    assert "." in first["modified_at"] and len(first["modified_at"].split(".")[1]) > 6
    listed = client.list().models
    assert [m.model for m in listed] == [s.name for s in ollama_server.models]
    assert listed[0].modified_at is not None and listed[0].modified_at.tzinfo is not None
    assert listed[0].details is not None and listed[0].details.quantization_level == "Q4_K_M"


def test_tag_defaults_to_latest_and_empty_list_is_a_list() -> None:
    with OllamaServer(models=["mistral", {"name": "phi3:mini", "family": "phi3"}]) as server:
        with ollama.Client(host=server.url, timeout=5) as c:
            assert [m.model for m in c.list().models] == ["mistral:latest", "phi3:mini"]
            assert c.show("mistral").details.family == "llama"  # type: ignore[union-attr]
        server.set_models([])
        with httpx.Client(timeout=5) as http:
            assert http.get(server.url + "/api/tags").json() == {"models": []}
            assert http.get(server.url + "/api/ps").json() == {"models": []}


def test_show_always_has_model_info_with_context_length(
    client: ollama.Client, http: httpx.Client
) -> None:
    shown = client.show("qwen2.5:7b")
    assert shown.modelinfo is not None
    assert shown.modelinfo["general.architecture"] == "qwen2"
    assert shown.modelinfo["qwen2.context_length"] == 32768
    assert shown.capabilities == ["completion", "tools"]
    assert shown.template and shown.parameters and shown.modified_at
    with pytest.raises(ollama.ResponseError) as info:
        client.show("missing:1b")
    assert (info.value.status_code, info.value.error) == (404, "model 'missing:1b' not found")
    r = http.post("/api/show", json={"model": ""})
    assert (r.status_code, r.json()) == (400, {"error": "model is required"})
    assert http.post("/api/show", json={"name": "llama3.2"}).status_code == 200  # legacy alias


# ---- chat ---------------------------------------------------------------------------------------


def test_chat_stream_parts_concatenate_to_the_deterministic_reply(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    parts = list(client.chat(model="llama3.2", messages=MSGS, stream=True))
    expected = reply_text("llama3.2", "why is the sky blue")
    assert "".join(p.message.content or "" for p in parts) == expected
    assert len(parts) == len(tokenize(expected)) + 1
    assert "\n" in "".join(p.message.content or "" for p in parts[:-1])
    final = parts[-1]
    assert final.done and final.done_reason == "stop" and final.message.content == ""
    assert final.eval_count == len(tokenize(expected))
    assert final.prompt_eval_count == prompt_tokens(MSGS)
    assert all(p.model == "llama3.2" for p in parts) and not any(p.done for p in parts[:-1])
    assert ollama_server.expected_reply("llama3.2", MSGS) == expected


def test_chat_wire_format_is_ndjson_with_required_keys_and_ns_metrics(http: httpx.Client) -> None:
    r = http.post("/api/chat", json={"model": "llama3.2", "messages": MSGS})
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["transfer-encoding"] == "chunked"
    lines = ndjson(r)
    for line in lines:
        assert {"model", "created_at", "message", "done"} <= set(line)
        assert line["message"]["role"] == "assistant"
        datetime.fromisoformat(line["created_at"])
    final = lines[-1]
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0
    assert final["eval_count"] == len(lines) - 1


def test_chat_streams_line_by_line_and_sees_the_client_leave(ollama_server: OllamaServer) -> None:
    ollama_server.set_token_delay(5.0)
    with (
        httpx.Client(timeout=5) as http,
        http.stream(
            "POST", ollama_server.url + "/api/chat", json={"model": "llama3.2", "messages": MSGS}
        ) as r,
    ):
        first = next(r.iter_lines())
        assert json.loads(first)["message"]["content"] == "llama3.2"
        # The server is waiting before line 2: line 1 was flushed on its own.
        assert ollama_server.requests_to("/api/chat")[0].lines_sent == 1
    rec = ollama_server.wait_closed_early()
    assert rec.path == "/api/chat" and rec.lines_sent == 1 and rec.closed_early


def test_chat_stream_false_is_one_object_with_the_whole_text(client: ollama.Client) -> None:
    resp = client.chat(model="qwen2.5:7b", messages=MSGS, stream=False)
    assert resp.message.content == reply_text("qwen2.5:7b", "why is the sky blue")
    assert resp.done and resp.eval_count == len(tokenize(resp.message.content))


def test_final_chunk_may_carry_the_last_token(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.last_token_in_done = True
    parts = list(client.chat(model="llama3.2", messages=MSGS, stream=True))
    tokens = tokenize(reply_text("llama3.2", "why is the sky blue"))
    assert len(parts) == len(tokens)
    assert parts[-1].done and parts[-1].message.content == tokens[-1] == " blue"
    assert parts[-1].eval_count == len(tokens)
    assert "".join(p.message.content or "" for p in parts) == "".join(tokens)


def test_format_schema_replies_with_json_matching_the_schema(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "steps": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "priority": {"enum": ["low", "high"]},
            "estimate": {"type": "integer"},
        },
        "required": ["title", "steps"],
    }
    text = "".join(
        p.message.content or ""
        for p in client.chat(model="llama3.2", messages=MSGS, format=schema, stream=True)
    )
    data = json.loads(text)
    assert isinstance(data["title"], str) and "why is the sky blue" in data["title"]
    assert len(data["steps"]) == 3 and all(isinstance(s, str) for s in data["steps"])
    assert data["priority"] == "low" and data["estimate"] == 5
    assert text == ollama_server.expected_reply("llama3.2", MSGS, schema)
    plain = client.chat(model="llama3.2", messages=MSGS, format="json").message.content
    assert json.loads(plain or "") == {"response": reply_text("llama3.2", "why is the sky blue")}


def test_queued_reply_can_be_invalid_json(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.queue_reply('{"title": "unterminated')
    text = client.chat(model="llama3.2", messages=MSGS, format={"type": "object"}).message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(text or "")
    # One-shot: the next reply is the normal one again.
    assert client.chat(model="llama3.2", messages=MSGS).message.content == reply_text(
        "llama3.2", "why is the sky blue"
    )


def test_servers_with_less_structured_output_reject_formats_as_they_would(
    http: httpx.Client, ollama_server: OllamaServer
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {"model": "llama3.2", "messages": MSGS, "stream": False}
    ollama_server.set_formats("json")  # Ollama before 0.5: format is a string field
    r = http.post("/api/chat", json={**body, "format": schema})
    assert (r.status_code, r.json()) == (
        400,
        {
            "error": "json: cannot unmarshal object into Go struct field "
            "ChatRequest.format of type string"
        },
    )
    r = http.post("/api/chat", json={**body, "format": "json"})
    assert r.status_code == 200 and json.loads(r.json()["message"]["content"])
    ollama_server.set_formats("none")
    for fmt in (schema, "json"):
        r = http.post("/api/chat", json={**body, "format": fmt})
        assert r.status_code == 400 and "format" in r.json()["error"]
    assert http.post("/api/chat", json=body).status_code == 200
    ollama_server.reset_faults()  # back to Ollama's own: a schema is taken
    assert http.post("/api/chat", json={**body, "format": schema}).status_code == 200


def test_unknown_model_is_404_before_streaming(client: ollama.Client, http: httpx.Client) -> None:
    stream = client.chat(model="nope:1b", messages=MSGS, stream=True)
    with pytest.raises(ollama.ResponseError) as info:
        next(iter(stream))
    assert (info.value.status_code, info.value.error) == (404, "model 'nope:1b' not found")
    r = http.post("/api/chat", json={"model": "nope:1b", "messages": MSGS})
    assert r.headers["content-type"].startswith("application/json")


def test_embedding_model_does_not_support_chat(http: httpx.Client) -> None:
    r = http.post("/api/chat", json={"model": "nomic-embed-text", "messages": MSGS})
    assert (r.status_code, r.json()) == (400, {"error": '"nomic-embed-text" does not support chat'})


def test_midstream_error_line_then_end_without_done(
    client: ollama.Client, http: httpx.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.error_after(2)
    seen: list[str] = []
    with pytest.raises(ollama.ResponseError) as info:
        for part in client.chat(model="llama3.2", messages=MSGS, stream=True):
            seen.append(part.message.content or "")
    assert (info.value.status_code, info.value.error) == (-1, MIDSTREAM_MESSAGE)
    assert seen == tokenize(reply_text("llama3.2", "why is the sky blue"))[:2]
    ollama_server.error_after(1, "CUDA out of memory")
    r = http.post("/api/chat", json={"model": "llama3.2", "messages": MSGS})
    lines = ndjson(r)
    assert r.status_code == 200 and lines[-1] == {"error": "CUDA out of memory"}
    assert not any(line.get("done") for line in lines)


def test_drop_after_cuts_the_connection_mid_stream(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.drop_after(3)
    seen = []
    with pytest.raises(httpx.RemoteProtocolError):
        for part in client.chat(model="llama3.2", messages=MSGS, stream=True):
            seen.append(part)
    assert len(seen) == 3
    rec = ollama_server.requests_to("/api/chat")[-1]
    assert rec.dropped and rec.lines_sent == 3


def test_raw_lines_reproduce_the_clients_raw_exceptions(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.raw_line_after(1, "\n")
    with pytest.raises(json.JSONDecodeError):
        list(client.chat(model="llama3.2", messages=MSGS, stream=True))
    ollama_server.raw_line_after(1, '{"done": true}\n')
    with pytest.raises(pydantic.ValidationError):
        list(client.chat(model="llama3.2", messages=MSGS, stream=True))


def test_fail_next_busy_and_first_byte_delay(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.fail_next(500, "model runner has unexpectedly stopped", path="/api/chat")
    client.list()  # path-filtered: other routes are unaffected
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=MSGS)
    assert (info.value.status_code, info.value.error) == (
        500,
        "model runner has unexpectedly stopped",
    )
    assert client.chat(model="llama3.2", messages=MSGS).done  # one-shot
    ollama_server.busy()
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=MSGS)
    assert (info.value.status_code, info.value.error) == (503, BUSY_MESSAGE)
    ollama_server.busy(False)
    ollama_server.delay_first_byte(5.0)
    with (
        ollama.Client(host=ollama_server.url, timeout=httpx.Timeout(5, read=0.2)) as quick,
        pytest.raises(httpx.ReadTimeout),
    ):
        quick.chat(model="llama3.2", messages=MSGS)
    rec = ollama_server.wait_closed_early()
    assert rec.lines_sent == 0 and rec.status is None


def test_empty_messages_load_and_unload(client: ollama.Client, ollama_server: OllamaServer) -> None:
    loaded = client.chat(model="llama3.2", messages=[])
    assert (loaded.done, loaded.done_reason, loaded.message.content) == (True, "load", "")
    assert "llama3.2:latest" in ollama_server.loaded()
    unloaded = client.chat(model="llama3.2", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert "llama3.2:latest" not in ollama_server.loaded()


def test_keep_alive_rules_are_reflected_in_ps(client: ollama.Client, http: httpx.Client) -> None:
    r = http.post("/api/chat", json={"model": "llama3.2", "messages": MSGS, "keep_alive": "300"})
    assert (r.status_code, r.json()) == (400, {"error": 'time: missing unit in duration "300"'})
    client.chat(model="qwen2.5:7b", messages=MSGS, keep_alive="10m")
    client.chat(model="llama3.2", messages=MSGS, keep_alive=-1)
    ps = client.ps().models
    assert [m.model for m in ps] == ["llama3.2:latest", "qwen2.5:7b"]  # longest keep-alive first
    now = datetime.now(UTC)
    assert ps[0].expires_at is not None and ps[0].expires_at > now + timedelta(days=365 * 200)
    assert ps[1].expires_at is not None
    assert now + timedelta(minutes=9) < ps[1].expires_at < now + timedelta(minutes=11)
    client.chat(model="qwen2.5:7b", messages=MSGS, keep_alive=0)
    assert [m.model for m in client.ps().models] == ["llama3.2:latest"]
    client.chat(model="qwen2.5:7b", messages=MSGS, keep_alive=30.5)  # a number = seconds
    assert [m.model for m in client.ps().models] == ["llama3.2:latest", "qwen2.5:7b"]


def test_think_streams_thinking_before_content_and_needs_the_capability(
    client: ollama.Client, http: httpx.Client
) -> None:
    parts = list(client.chat(model="qwen3:4b", messages=MSGS, think=True, stream=True))
    thinking = "".join(p.message.thinking or "" for p in parts)
    assert thinking == "Thinking about: why is the sky blue"
    first_content = next(i for i, p in enumerate(parts) if p.message.content)
    assert all(not p.message.thinking for p in parts[first_content:])
    assert parts[-1].eval_count == len(parts) - 1
    r = http.post("/api/chat", json={"model": "llama3.2", "messages": MSGS, "think": True})
    assert (r.status_code, r.json()) == (400, {"error": '"llama3.2" does not support thinking'})


def test_num_predict_stops_with_length(client: ollama.Client) -> None:
    resp = client.chat(model="llama3.2", messages=MSGS, options={"num_predict": 2})
    assert resp.done_reason == "length" and resp.eval_count == 2
    assert resp.message.content == "".join(tokenize(reply_text("llama3.2", "x"))[:2])


def test_generate_streams_response_field(client: ollama.Client) -> None:
    parts = list(client.generate(model="llama3.2", prompt="hi there", stream=True))
    assert "".join(p.response or "" for p in parts) == reply_text("llama3.2", "hi there")
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert client.generate(model="llama3.2", prompt="").done_reason == "load"


# ---- pull / delete / copy / embed ---------------------------------------------------------------


def test_pull_reports_progress_then_installs(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    progress = list(client.pull("tinyllama", stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers: dict[str, list[int]] = {}
    for p in progress:
        if p.digest:
            assert p.digest.startswith("sha256:") and p.status == f"pulling {p.digest[7:19]}"
            layers.setdefault(p.digest, []).append(p.completed or 0)
    assert len(layers) == 4
    for completed in layers.values():
        assert completed == sorted(completed) and completed[-1] > 0
    assert ollama_server.find("tinyllama") is not None
    again = [p for p in client.pull("tinyllama", stream=True) if p.digest]
    assert all(p.completed == p.total for p in again) and len(again) == 4


def test_pull_unknown_model_fails_after_pulling_manifest(
    client: ollama.Client, http: httpx.Client
) -> None:
    seen = []
    with pytest.raises(ollama.ResponseError) as info:
        for p in client.pull("no-such-model", stream=True):
            seen.append(p.status)
    assert seen == ["pulling manifest"]
    assert info.value.status_code == -1 and "file does not exist" in info.value.error
    r = http.post("/api/pull", json={"model": "no-such-model", "stream": False})
    assert r.status_code == 500 and "file does not exist" in r.json()["error"]
    r = http.post("/api/pull", json={"model": "bad name!"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid model name"})
    assert client.pull("phi3:mini").status == "success"


def test_a_cancelled_pull_resumes_from_the_bytes_already_on_disk(
    ollama_server: OllamaServer,
) -> None:
    """download.go keeps a layer's ``-partial`` file: the next pull's first line for that layer
    reports what is already there, and a layer that finished is reported whole at once."""
    sizes = ollama_server.layer_sizes("tinyllama")
    weights = max(sizes, key=lambda d: sizes[d])
    pause = ollama_server.pause_after(4)  # manifest, the first layer's first line, two steps
    seen: list[dict] = []
    with (
        ollama.Client(host=ollama_server.url, timeout=5) as client,
        pytest.raises(httpx.HTTPError),
    ):
        stream = client.pull("tinyllama", stream=True)
        for p in stream:
            seen.append(p.model_dump(exclude_none=True))
            if len(seen) == 4:
                assert pause.reached.wait(5)
                stream.close()  # type: ignore[attr-defined]
                raise httpx.ReadError("cancelled by the test")
    ollama_server.wait_closed_early()
    reported = max(p.get("completed", 0) for p in seen if p.get("digest") == weights)
    assert 0 < reported < sizes[weights]
    assert ollama_server.downloaded_bytes("tinyllama") >= reported
    assert ollama_server.find("tinyllama") is None  # not installed: the pull never finished

    with ollama.Client(host=ollama_server.url, timeout=5) as client:
        again = [p.model_dump(exclude_none=True) for p in client.pull("tinyllama", stream=True)]
    first = next(p for p in again if p.get("digest") == weights)
    assert first["completed"] >= reported and first["total"] == sizes[weights]
    assert again[-1] == {"status": "success"}
    assert ollama_server.downloaded_bytes("tinyllama") == sum(sizes.values())


def test_a_fresh_layer_has_no_completed_until_bytes_arrive(http: httpx.Client) -> None:
    r = http.post("/api/pull", json={"model": "phi3:mini"})
    lines = ndjson(r)
    per_layer: dict[str, list[dict]] = {}
    for line in lines:
        if "digest" in line:
            per_layer.setdefault(line["digest"], []).append(line)
    assert all("completed" not in series[0] for series in per_layer.values())
    assert all(series[-1]["completed"] == series[-1]["total"] for series in per_layer.values())


def test_a_full_disk_fails_mid_pull_with_go_s_words(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    message = DISK_FULL_MESSAGE.format(digest="abc")
    ollama_server.error_after(3, message, path="/api/pull")
    with pytest.raises(ollama.ResponseError) as info:
        list(client.pull("tinyllama", stream=True))
    assert info.value.status_code == -1 and "no space left on device" in info.value.error
    assert ollama_server.find("tinyllama") is None


def test_deleting_a_model_deletes_its_blobs(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    assert ollama_server.downloaded_bytes("qwen2.5:7b") == ollama_server.find("qwen2.5:7b").size  # type: ignore[union-attr]
    client.delete("qwen2.5:7b")
    assert ollama_server.downloaded_bytes("qwen2.5:7b") == 0


def test_keep_alive_zero_with_no_prompt_unloads_any_model(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    """``ollama stop``: GenerateHandler expires the runner before checking capabilities, so an
    embedding model unloads too; /api/ps shows expiry, VRAM and context length."""
    client.embed(model="nomic-embed-text", input="hello")
    client.chat(model="qwen2.5:7b", messages=MSGS, keep_alive="10m")
    ps = client.ps()
    assert {m.model for m in ps.models} == {"nomic-embed-text:latest", "qwen2.5:7b"}
    assert all(m.expires_at and m.size_vram and m.context_length for m in ps.models)
    assert ps.models[0].model == "qwen2.5:7b"  # the longest keep-alive first
    unload = client.generate(model="nomic-embed-text", keep_alive=0)
    assert unload.done_reason == "unload"
    assert ollama_server.loaded() == ["qwen2.5:7b"]
    assert client.generate(model="qwen2.5:7b", prompt="", keep_alive=0).done_reason == "unload"
    assert ollama_server.loaded() == []
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(model="ghost", keep_alive=0)
    assert info.value.status_code == 404


def test_delete_is_200_empty_then_404(client: ollama.Client, http: httpx.Client) -> None:
    r = http.request("DELETE", "/api/delete", json={"model": "qwen2.5:7b"})
    assert (r.status_code, r.content) == (200, b"")
    with pytest.raises(ollama.ResponseError) as info:
        client.delete("qwen2.5:7b")
    assert (info.value.status_code, info.value.error) == (404, "model 'qwen2.5:7b' not found")
    assert client.delete("llama3.2").status == "success"
    assert [m.model for m in client.list().models] == ["qwen3:4b", "nomic-embed-text:latest"]


def test_copy_makes_a_new_name(client: ollama.Client) -> None:
    assert client.copy("llama3.2", "mine").status == "success"
    assert "mine:latest" in [m.model for m in client.list().models]
    with pytest.raises(ollama.ResponseError) as info:
        client.copy("ghost", "x")
    assert info.value.status_code == 404


def test_embed_returns_a_list_of_unit_vectors(client: ollama.Client, http: httpx.Client) -> None:
    one = client.embed(model="nomic-embed-text", input="hello")
    two = client.embed(model="nomic-embed-text", input=["hello", "world"])
    assert len(one.embeddings) == 1 and len(two.embeddings) == 2
    assert one.embeddings[0] == two.embeddings[0] != two.embeddings[1]
    assert abs(sum(x * x for x in one.embeddings[0]) - 1) < 1e-3
    assert len(client.embed(model="nomic-embed-text", input="a", dimensions=8).embeddings[0]) == 8
    r = http.post("/api/embed", json={"model": "nomic-embed-text", "input": 3})
    assert (r.status_code, r.json()) == (400, {"error": "invalid input type"})
    assert http.post("/api/embed", json={"model": "nomic-embed-text", "input": []}).json() == {
        "model": "nomic-embed-text",
        "embeddings": [],
    }


# ---- recording, restart, concurrency ------------------------------------------------------------


def test_requests_are_recorded_with_headers_and_body(
    client: ollama.Client, ollama_server: OllamaServer
) -> None:
    client.chat(model="llama3.2", messages=MSGS, options={"temperature": 0.2}, keep_alive="1m")
    rec = ollama_server.requests_to("/api/chat", "POST")[0]
    assert rec.json["options"] == {"temperature": 0.2} and rec.json["keep_alive"] == "1m"
    assert rec.json["messages"] == MSGS
    assert rec.headers["user-agent"].startswith("ollama-python/")
    assert rec.status == 200 and rec.streamed is False
    assert ollama_server.wait_for(lambda: rec.done)


def test_concurrent_streams_are_all_served_and_recorded(ollama_server: OllamaServer) -> None:
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        with ollama.Client(host=ollama_server.url, timeout=5) as c:
            msgs = [{"role": "user", "content": f"question {i}"}]
            parts = c.chat(model="llama3.2", messages=msgs, stream=True)
            results[i] = "".join(p.message.content or "" for p in parts)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == {i: reply_text("llama3.2", f"question {i}") for i in range(6)}
    assert len(ollama_server.requests_to("/api/chat")) == 6


def test_stop_then_start_again_on_the_same_port() -> None:
    with (
        OllamaServer(models=["llama3.2"]) as server,
        ollama.Client(host=server.url, timeout=5) as c,
    ):
        url = server.url
        assert c.list().models
        server.stop()
        assert not server.running
        with pytest.raises(ConnectionError):
            c.list()
        server.start()
        assert server.url == url and [m.model for m in c.list().models] == ["llama3.2:latest"]
        server.restart()
        assert c.list().models


def test_stop_cuts_a_stream_in_progress() -> None:
    with OllamaServer() as server, ollama.Client(host=server.url, timeout=5) as c:
        server.set_token_delay(5.0)
        stream = iter(c.chat(model="llama3.2", messages=MSGS, stream=True))
        assert next(stream).message.content == "llama3.2"
        server.restart()
        with pytest.raises(httpx.RemoteProtocolError):
            next(stream)
        rec = server.requests_to("/api/chat")[0]
        assert rec.server_stopped and not rec.closed_early
        server.set_token_delay(0)
        assert c.chat(model="llama3.2", messages=MSGS).done


# ---- OpenAI-compatible /v1 ----------------------------------------------------------------------


def test_v1_stream_is_sse_with_finish_usage_and_done(
    oai: openai.OpenAI, http: httpx.Client
) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="llama3.2",
            messages=OAI_MSGS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply_text("llama3.2", "why is the sky blue")
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(tokenize(text))
    assert chunks[-1].usage.prompt_tokens == prompt_tokens(MSGS)
    assert all(c.model == "llama3.2" and c.system_fingerprint == "fp_ollama" for c in chunks)
    raw = http.post(
        "/v1/chat/completions", json={"model": "llama3.2", "messages": MSGS, "stream": True}
    )
    assert raw.headers["content-type"] == "text/event-stream"
    assert raw.text.endswith("data: [DONE]\n\n") and '"usage"' not in raw.text


def test_v1_stream_defaults_to_false_and_json_modes(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(model="llama3.2", messages=OAI_MSGS)
    assert resp.object == "chat.completion" and resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == reply_text("llama3.2", "why is the sky blue")
    assert resp.usage is not None and resp.usage.total_tokens == resp.usage.prompt_tokens + len(
        tokenize(resp.choices[0].message.content)
    )
    as_json = oai.chat.completions.create(
        model="llama3.2",
        messages=OAI_MSGS,
        response_format={"type": "json_object"},
    )
    assert json.loads(as_json.choices[0].message.content or "") == {
        "response": reply_text("llama3.2", "why is the sky blue")
    }
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    structured = oai.chat.completions.create(
        model="llama3.2",
        messages=OAI_MSGS,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert json.loads(structured.choices[0].message.content or "") == {
        "answer": "answer: why is the sky blue"
    }


def test_v1_errors_are_openai_shaped(oai: openai.OpenAI, ollama_server: OllamaServer) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        oai.chat.completions.create(model="ghost", messages=OAI_MSGS)
    assert nf.value.body == {
        "message": "model 'ghost' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="llama3.2", messages=[])
    ollama_server.fail_next(500, "runner crashed")
    with pytest.raises(openai.InternalServerError) as ise:
        oai.chat.completions.create(model="llama3.2", messages=OAI_MSGS)
    assert isinstance(ise.value.body, dict) and ise.value.body["type"] == "api_error"
    ollama_server.busy()
    with pytest.raises(openai.InternalServerError) as busy:
        oai.chat.completions.create(model="llama3.2", messages=OAI_MSGS)
    assert busy.value.status_code == 503


def test_v1_midstream_failure_ends_without_finish_or_done(
    oai: openai.OpenAI, http: httpx.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.error_after(2)
    chunks = list(oai.chat.completions.create(model="llama3.2", messages=OAI_MSGS, stream=True))
    assert not any(c.choices[0].finish_reason for c in chunks if c.choices)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "llama3.2 says:"
    ollama_server.error_after(1)
    raw = http.post(
        "/v1/chat/completions", json={"model": "llama3.2", "messages": MSGS, "stream": True}
    )
    assert "[DONE]" not in raw.text and 'finish_reason":"stop' not in raw.text


def test_v1_models_lists_ids_and_null_data_when_empty(
    oai: openai.OpenAI, http: httpx.Client, ollama_server: OllamaServer
) -> None:
    ids = [m.id for m in oai.models.list().data]
    assert ids == [s.name for s in ollama_server.models]
    one = oai.models.retrieve("qwen2.5:7b")
    assert one.owned_by == "library" and one.created == 1761499281
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("ghost")
    ollama_server.set_models([])
    assert http.get("/v1/models").json() == {"object": "list", "data": None}


def test_cloud_model_spec_carries_remote_host(
    http: httpx.Client, ollama_server: OllamaServer
) -> None:
    ollama_server.set_models(
        [ModelSpec("gpt-oss:120b-cloud", remote_host="https://ollama.com:443"), "llama3.2"]
    )
    entries = http.get("/api/tags").json()["models"]
    assert entries[0]["remote_host"] == "https://ollama.com:443"
    assert "remote_host" not in entries[1]


# ---- a proxy that moved -------------------------------------------------------------------------


def test_redirect_to_answers_every_route_with_a_location_and_is_recorded(
    ollama_server: OllamaServer, http: httpx.Client
) -> None:
    ollama_server.redirect_to("http://10.1.2.3:11434/", 308)
    for method, path in (("GET", "/api/tags?x=1"), ("POST", "/api/chat"), ("GET", "/")):
        r = http.request(method, path, json={} if method == "POST" else None)
        assert r.status_code == 308 and r.content == b""
        assert r.headers["location"] == f"http://10.1.2.3:11434{path}"
    assert [rec.status for rec in ollama_server.requests] == [308, 308, 308]
    ollama_server.reset_faults()
    assert http.get("/api/version").status_code == 200
