"""The halext protocol test server follows halext-api.md: raw httpx against real HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers.halext_server import (
    MOCK_SENTENCE,
    NGINX_502,
    HalextServer,
    expected_reply,
    mock_chunks,
    reply_chunks,
)

MODEL_KEYS = {
    "id", "name", "provider", "source", "size", "node_id", "node_name", "endpoint",
    "latency_ms", "metadata", "modified_at", "description", "context_window",
    "max_output_tokens", "input_cost_per_1m", "output_cost_per_1m", "supports_vision",
    "supports_function_calling",
}  # fmt: skip


@pytest.fixture
def client(halext_server: HalextServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=halext_server.url, trust_env=False, timeout=5.0) as c:
        yield c


def login(client: httpx.Client, username: str = "dev", password: str = "dev123") -> str:
    resp = client.post("/token", data={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sse(chunks: list[str]) -> bytes:
    return b"".join(f"data: {c}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


# ---- auth ---------------------------------------------------------------------------------------


def test_login_form_token_and_me(halext_server: HalextServer, client: httpx.Client) -> None:
    resp = client.post("/token", data={"username": "dev", "password": "dev123"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "dev"
    assert abs(claims["exp"] - (halext_server.now() + 1800)) <= 2  # type: ignore[operator]

    # Email works as the username; the token's sub is still the username.
    token = login(client, "dev@example.com", "dev123")
    assert claims_of(token)["sub"] == "dev"

    me = client.get("/users/me/", headers={"Authorization": f"bearer {token}"})  # any case
    assert me.status_code == 200
    assert me.json()["username"] == "dev"
    assert me.json()["is_admin"] is True
    assert set(me.json()) == {
        "username", "email", "full_name", "is_admin", "id", "created_at",
        "tasks", "events", "pages", "labels",
    }  # fmt: skip
    assert halext_server.requests_to("/users/me/")[-1].user == "dev"


def test_login_failures(client: httpx.Client) -> None:
    bad = client.post("/token", data={"username": "dev", "password": "nope"})
    assert bad.status_code == 401
    assert bad.json() == {"detail": "Incorrect username or password"}
    assert bad.headers["www-authenticate"] == "Bearer"

    as_json = client.post("/token", json={"username": "dev", "password": "dev123"})
    assert as_json.status_code == 422
    assert [e["loc"] for e in as_json.json()["detail"]] == [
        ["body", "username"],
        ["body", "password"],
    ]


def test_401_shapes_and_both_mounts(halext_server: HalextServer, client: httpx.Client) -> None:
    none = client.get("/users/me/")
    assert none.status_code == 401
    assert none.json() == {"detail": "Not authenticated"}
    forged = client.get("/users/me/", headers=bearer(login(client)[:-2] + "xx"))
    assert forged.json() == {"detail": "Could not validate credentials"}
    assert forged.headers["www-authenticate"] == "Bearer"
    # The same routes answer at the root.
    root = httpx.get(f"{halext_server.root_url}/users/me/", headers=bearer(login(client)),
                     trust_env=False)  # fmt: skip
    assert root.status_code == 200


def test_token_expires_on_the_server_clock(
    halext_server: HalextServer, client: httpx.Client
) -> None:
    token = login(client)
    halext_server.advance_clock(1799)
    assert client.get("/users/me/", headers=bearer(token)).status_code == 200
    halext_server.advance_clock(2)
    expired = client.get("/users/me/", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json() == {"detail": "Could not validate credentials"}

    fresh = login(client)
    assert client.get("/users/me/", headers=bearer(fresh)).status_code == 200
    halext_server.expire_all_tokens()
    assert client.get("/users/me/", headers=bearer(fresh)).status_code == 401
    assert client.get("/users/me/", headers=bearer(login(client))).status_code == 200


def test_removed_user_token_is_rejected(halext_server: HalextServer, client: httpx.Client) -> None:
    token = login(client)
    halext_server.remove_user("dev")
    assert client.get("/users/me/", headers=bearer(token)).json() == {
        "detail": "Could not validate credentials"
    }


# ---- paths ------------------------------------------------------------------------------------


def test_trailing_slash_redirects_and_unknown_paths(
    halext_server: HalextServer, client: httpx.Client
) -> None:
    resp = client.get("/users/me")
    assert resp.status_code == 307
    assert resp.headers["location"] == f"{halext_server.url}/users/me/"
    post = client.post("/ai/chat/", json={"prompt": "x"})
    assert post.status_code == 307
    assert post.headers["location"].endswith("/api/ai/chat")
    missing = client.get("/ai/usage")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}


def test_health_and_version_need_no_auth(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "healthy"
    assert health["version"] == "0.2.0-refactored"
    assert set(health["components"]) == {"database", "ai_provider", "ai_model"}
    assert client.get("/version").json()["docs_url"] == "/docs"


# ---- models -----------------------------------------------------------------------------------


def test_models_shape_and_order(halext_server: HalextServer, client: httpx.Client) -> None:
    resp = client.get("/ai/models", headers=bearer(login(client)))
    body = resp.json()
    models = body["models"]
    assert all(set(m) == MODEL_KEYS for m in models)
    ids = [m["id"] for m in models]
    assert ids[0] == body["default_model_id"] == "gemini:gemini-2.5-flash"
    assert "openai:gpt-4o-mini" in ids and "gemini:gemini-1.5-flash-latest" in ids
    node = next(m for m in models if m["id"] == "client:3:qwen2.5:7b")
    assert (node["provider"], node["source"], node["node_id"], node["node_name"]) == (
        "ollama", "client", 3, "Studio",
    )  # fmt: skip
    assert node["latency_ms"] == 22
    local = next(m for m in models if m["id"] == "ollama:llama3.1:8b")
    assert (local["provider"], local["source"]) == ("ollama", "ollama")
    assert isinstance(local["size"], int)
    assert not any(i.startswith("mock:") for i in ids)
    assert {c["provider"] for c in body["credentials"]} == {"openai", "gemini"}


def test_models_rewrite_the_server_default_without_cloud() -> None:
    with (
        HalextServer(cloud_configured=False) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=5.0) as c,
    ):
        assert server.default_model_id == "gemini:gemini-2.5-flash"
        body = c.get("/ai/models", headers=bearer(login(c))).json()
        assert body["default_model_id"] == "ollama:llama3.1:8b"
        assert body["models"][0]["id"] == "ollama:llama3.1:8b"
        assert server.default_model_id == "ollama:llama3.1:8b"  # shared state rewritten


def test_mock_models_only_when_nothing_else() -> None:
    with (
        HalextServer(cloud_configured=False, server_ollama_models=None, client_nodes=[]) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=5.0) as c,
    ):
        body = c.get("/ai/models", headers=bearer(login(c))).json()
        assert [m["id"] for m in body["models"]] == ["mock:llama3.1", "mock:mistral"]
        assert body["default_model_id"] == "mock:llama3.1"


def test_provider_filter_limit_and_the_no_match_bug(client: httpx.Client) -> None:
    token = login(client)
    ollama = client.get("/ai/models", params={"provider": "ollama-local"}, headers=bearer(token))
    assert {m["source"] for m in ollama.json()["models"]} == {"ollama", "client"}
    nothing = client.get("/ai/models", params={"provider": "openwebui"}, headers=bearer(token))
    assert nothing.status_code == 200
    assert nothing.json()["default_model_id"] == "mock:llama3.1"
    assert [m["id"] for m in nothing.json()["models"]] == ["mock:llama3.1"]
    assert nothing.json()["credentials"] == []
    two = client.get("/ai/models", params={"limit": 2}, headers=bearer(token))
    assert len(two.json()["models"]) == 2
    for bad in (0, 501):
        resp = client.get("/ai/models", params={"limit": bad}, headers=bearer(token))
        assert resp.status_code == 422
        assert resp.json()["detail"][0]["loc"] == ["query", "limit"]


# ---- chat -------------------------------------------------------------------------------------


def test_chat_resolution_and_silent_fallbacks(client: httpx.Client) -> None:
    h = bearer(login(client))

    def chat(model: str | None) -> dict[str, str]:
        resp = client.post("/ai/chat", json={"prompt": "hi", "model": model}, headers=h)
        assert resp.status_code == 200
        return resp.json()

    ok = chat("ollama-local:llama3.1:8b")
    assert ok == {"response": expected_reply("ollama:llama3.1:8b", "hi"),
                  "model": "ollama:llama3.1:8b", "provider": "ollama-local"}  # fmt: skip
    node = chat("client:3:qwen2.5:7b")
    assert (node["model"], node["provider"]) == ("client:3:qwen2.5:7b", "client")
    # Unknown Ollama model: the provider fails, OpenAI answers (configured here).
    assert (chat("ollama:nope")["model"], chat("ollama:nope")["provider"]) == (
        "openai:gpt-4o-mini", "openai",
    )  # fmt: skip
    assert chat("bogus:x")["model"] == "openai:gpt-4o-mini"
    assert chat(None)["model"] == "gemini:gemini-2.5-flash"  # the server default


def test_chat_fallbacks_without_cloud() -> None:
    with (
        HalextServer(cloud_configured=False) as server,
        httpx.Client(base_url=server.url, trust_env=False, timeout=5.0) as c,
    ):
        h = bearer(login(c))
        nope = c.post("/ai/chat", json={"prompt": "hi", "model": "ollama:nope"}, headers=h).json()
        assert nope == {"response": MOCK_SENTENCE, "model": "mock:llama3.1", "provider": "mock"}
        for ident in ("bogus:x", "client:99:foo", "openai:gpt-4o", "client:3"):
            resp = c.post("/ai/chat", json={"prompt": "hi", "model": ident}, headers=h).json()
            assert (resp["model"], resp["provider"]) == ("mock:mock", "mock"), ident


def test_chat_validation(client: httpx.Client) -> None:
    h = bearer(login(client))
    bad = client.post(
        "/ai/chat",
        json={"prompt": "hi", "history": [{"role": "user", "content": 1}]},
        headers=h,
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "history", 0, "content"]
    missing = client.post("/ai/chat", json={"history": []}, headers=h)
    assert missing.json()["detail"][0]["loc"] == ["body", "prompt"]
    assert client.post("/ai/chat", json={"prompt": "x"}).status_code == 401


# ---- streams ----------------------------------------------------------------------------------


def test_stream_framing_bytes_and_header(client: httpx.Client) -> None:
    h = bearer(login(client))
    prompt = "two\nlines"
    for path in ("/ai/chat/stream", "/ai/stream"):
        resp = client.post(path, json={"prompt": prompt, "model": "ollama:qwen2.5:7b"}, headers=h)
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["x-halext-ai-model"] == "ollama:qwen2.5:7b"
        chunks = reply_chunks(expected_reply("ollama:qwen2.5:7b", prompt))
        assert any("\n" in c for c in chunks)
        assert resp.content == sse(chunks)
        assert "cache-control" not in resp.headers


def test_mock_stream_word_by_word_and_failing_provider(client: httpx.Client) -> None:
    h = bearer(login(client))
    mock = client.post("/ai/chat/stream", json={"prompt": "x", "model": "mock:llama3.1"}, headers=h)
    assert mock.content == sse(mock_chunks())
    assert "".join(mock_chunks()) == MOCK_SENTENCE + " "
    # Unknown Ollama model in a stream: header keeps the identifier, body is the mock text.
    nope = client.post("/ai/chat/stream", json={"prompt": "x", "model": "ollama:nope"}, headers=h)
    assert nope.headers["x-halext-ai-model"] == "ollama:nope"
    assert nope.content == sse(mock_chunks())


def test_provider_failing_mid_stream_appends_the_mock_text(
    halext_server: HalextServer, client: httpx.Client
) -> None:
    halext_server.fail_provider("ollama:llama3.1:8b", after_chunks=2)
    resp = client.post(
        "/ai/chat/stream",
        json={"prompt": "hi", "model": "ollama:llama3.1:8b"},
        headers=bearer(login(client)),
    )
    first_two = reply_chunks(expected_reply("ollama:llama3.1:8b", "hi"))[:2]
    assert resp.content == sse(first_two + mock_chunks())
    assert resp.headers["x-halext-ai-model"] == "ollama:llama3.1:8b"


def test_stream_chunks_are_flushed_as_they_are_produced(
    halext_server: HalextServer, client: httpx.Client
) -> None:
    halext_server.set_chunk_delay(0.2)
    h = bearer(login(client))
    with client.stream("POST", "/ai/chat/stream", json={"prompt": "p", "model": "mock:x"},
                       headers=h) as resp:  # fmt: skip
        first = next(resp.iter_raw())
        rec = halext_server.requests_to("/ai/chat/stream")[-1]
        # The first event reached us while the server was still producing the rest.
        assert first.startswith(b"data: I ")
        assert rec.chunks_sent < len(mock_chunks())
    assert halext_server.wait_closed_early(5.0) is rec


def test_scripted_stream_and_drop(halext_server: HalextServer, client: httpx.Client) -> None:
    h = bearer(login(client))
    halext_server.stream_script(["a\n\nb", "\n"], model="openai:gpt-4o")
    resp = client.post("/ai/chat/stream", json={"prompt": "p", "model": "mock:x"}, headers=h)
    assert resp.content == b"data: a\n\nb\n\ndata: \n\n\ndata: [DONE]\n\n"
    assert resp.headers["x-halext-ai-model"] == "openai:gpt-4o"

    halext_server.stream_script(["one ", "two ", "three "], drop_after=2)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/ai/chat/stream", json={"prompt": "p", "model": "mock:x"}, headers=h)
    rec = halext_server.requests_to("/ai/chat/stream")[-1]
    assert halext_server.wait_for(lambda: rec.done, 5.0)
    assert (rec.dropped, rec.chunks_sent, rec.completed) == (True, 2, False)


# ---- faults and broken endpoints ----------------------------------------------------------------


def test_plain_text_500s_and_proxy_pages(halext_server: HalextServer, client: httpx.Client) -> None:
    h = bearer(login(client))
    for path, body in (
        ("/ai/tasks/suggest", {"title": "t"}),
        ("/ai/notes/summarize", {"content": "c"}),
        ("/ai/events/analyze", {"title": "t", "start_time": "2026-01-01T10:00:00",
                                "end_time": "2026-01-01T11:00:00"}),
    ):  # fmt: skip
        resp = client.post(path, json=body, headers=h)
        assert resp.status_code == 500
        assert resp.text == "Internal Server Error"
        assert resp.headers["content-type"].startswith("text/plain")

    halext_server.fail_next("/api/ai/chat", 502, NGINX_502, "text/html")
    proxy = client.post("/ai/chat", json={"prompt": "x"}, headers=h)
    assert proxy.status_code == 502
    assert "<title>502 Bad Gateway</title>" in proxy.text
    assert client.post("/ai/chat", json={"prompt": "x"}, headers=h).status_code == 200


def test_delay_first_byte(halext_server: HalextServer, client: httpx.Client) -> None:
    halext_server.delay_first_byte(0.3, path="/health")
    t0 = time.monotonic()
    assert client.get("/health").status_code == 200
    assert time.monotonic() - t0 >= 0.3
    t1 = time.monotonic()
    client.get("/health")
    assert time.monotonic() - t1 < 0.3  # one-shot


def test_admin_ai_clients(halext_server: HalextServer, client: httpx.Client) -> None:
    with (
        HalextServer(users={"dev": "dev123", "ann": "pw"}) as other,
        httpx.Client(base_url=other.url, trust_env=False, timeout=5.0) as c,
    ):
        forbidden = c.get("/admin/ai-clients", headers=bearer(login(c, "ann", "pw")))
        assert forbidden.status_code == 403
        assert forbidden.json() == {"detail": "Admin access required"}

    h = bearer(login(client))
    nodes = client.get("/admin/ai-clients", headers=h).json()
    assert [(n["id"], n["base_url"]) for n in nodes] == [(3, "http://node3.lan:11434")]
    assert client.get("/admin/ai-clients/3/models", headers=h).json() == {"models": ["qwen2.5:7b"]}
    test = client.post("/admin/ai-clients/3/test", headers=h).json()
    assert test["online"] is True and test["model_count"] == 1
    assert client.get("/admin/ai-clients/9/models", headers=h).json() == {
        "detail": "Client not found"
    }
    halext_server.set_node(3, last_seen_at="2026-01-05T10:00:00")
    broken = client.get("/admin/ai-clients", headers=h)
    assert (broken.status_code, broken.text) == (500, "Internal Server Error")


def test_testing_a_node_refreshes_its_models_and_breaks_the_list(
    halext_server: HalextServer, client: httpx.Client
) -> None:
    """upstream ``update_node_status``: an online test sets ``last_seen_at``, after which the
    list answers a plain 500 (§9); a missing node is a 500 too (its ``{"error"}`` fails the
    response model)."""
    h = bearer(login(client))
    assert client.get("/admin/ai-clients", headers=h).status_code == 200
    test = client.post("/admin/ai-clients/3/test", headers=h).json()
    assert test == {
        "status": "online",
        "online": True,
        "message": None,
        "models": ["qwen2.5:7b"],
        "model_count": 1,
        "response_time_ms": 22,
    }
    assert halext_server.node(3)["last_seen_at"]
    assert client.get("/admin/ai-clients", headers=h).status_code == 500
    assert client.get("/admin/ai-clients/3", headers=h).status_code == 500
    missing = client.post("/admin/ai-clients/9/test", headers=h)
    assert (missing.status_code, missing.text) == (500, "Internal Server Error")
    halext_server.set_node(3, reachable=False)
    down = client.post("/admin/ai-clients/3/test", headers=h).json()
    assert (down["online"], down["status"]) == (False, "offline")
    assert down["message"] == "Connection refused - service not running"


def test_node_info_pull_and_delete_bodies(
    halext_server: HalextServer, client: httpx.Client
) -> None:
    h = bearer(login(client))
    info = client.get("/admin/ai-clients/3/info", headers=h).json()
    assert info == {
        "version": "0.12.3",
        "models": ["qwen2.5:7b"],
        "model_count": 1,
        "type": "ollama",
        "url": "http://node3.lan:11434",
    }
    pulled = client.post("/admin/ai-clients/3/pull-model", json={"model_name": "tinyllama"},
                         headers=h)  # fmt: skip
    assert pulled.json() == {"status": "success", "message": "Started pulling tinyllama on Studio"}
    assert "tinyllama:latest" in halext_server.node(3)["models"]
    # The cached capabilities still list the old models until the node is tested again.
    assert client.get("/admin/ai-clients/3/models", headers=h).json() == {"models": ["qwen2.5:7b"]}
    client.post("/admin/ai-clients/3/test", headers=h)
    assert client.get("/admin/ai-clients/3/models", headers=h).json() == {
        "models": ["qwen2.5:7b", "tinyllama:latest"]
    }
    # An unknown name fails inside Ollama's 200 stream: upstream calls that a success.
    ghost = client.post("/admin/ai-clients/3/pull-model", json={"model_name": "ghost:1b"},
                        headers=h)  # fmt: skip
    assert ghost.status_code == 200 and "ghost:1b" not in halext_server.node(3)["models"]
    bad = client.post("/admin/ai-clients/3/pull-model", json={"model_name": "bad name!"}, headers=h)
    assert bad.status_code == 400 and "400 Bad Request" in bad.json()["detail"]
    assert client.post("/admin/ai-clients/3/pull-model", json={}, headers=h).status_code == 422

    deleted = client.post("/admin/ai-clients/3/delete-model", json={"model_name": "tinyllama"},
                          headers=h)  # fmt: skip
    assert deleted.json() == {"status": "success", "message": "Deleted tinyllama from Studio"}
    again = client.post("/admin/ai-clients/3/delete-model", json={"model_name": "tinyllama"},
                        headers=h)  # fmt: skip
    assert again.status_code == 400
    assert again.json()["detail"].startswith(
        "Client error '404 Not Found' for url 'http://node3.lan:11434/api/delete'"
    )
    halext_server.set_node(3, reachable=False)
    assert client.get("/admin/ai-clients/3/info", headers=h).json() == {
        "error": "All connection attempts failed"
    }
    down = client.post("/admin/ai-clients/3/pull-model", json={"model_name": "tinyllama"},
                       headers=h)  # fmt: skip
    assert (down.status_code, down.json()) == (400, {"detail": "All connection attempts failed"})
    assert client.post("/admin/ai-clients/7/delete-model", json={"model_name": "x"},
                       headers=h).json() == {"detail": "Client not found"}  # fmt: skip


def test_embeddings(client: httpx.Client) -> None:
    h = bearer(login(client))
    mock = client.post("/ai/embeddings", json={"text": "hello", "model": "openai:gpt-4o"},
                       headers=h).json()  # fmt: skip
    assert mock["dimension"] == 384 == len(mock["embeddings"])
    assert mock["model"] == "openai:gpt-4o"
    local = client.post("/ai/embeddings", json={"text": "hello", "model": "ollama:qwen2.5:7b"},
                        headers=h).json()  # fmt: skip
    assert local["dimension"] == len(local["embeddings"]) != 384
