"""``halext-desktop pull|rm|show|ps`` in-process (``app.cli.main``), and Ctrl+C in a real
process, against the Ollama and halext protocol test servers on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import ollama
import pytest

from halext_desktop.app.cli import main
from halext_desktop.routing.units import format_bytes
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import DISK_FULL_MESSAGE, OllamaServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    monkeypatch.setenv("HALEXT_URL", halext_server.url)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch, env: None) -> None:
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("halext-desktop:")]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# ---- pull -------------------------------------------------------------------------------------


def test_pull_prints_plain_lines_when_not_a_terminal_and_the_model_appears(
    env, capsys, ollama_server: OllamaServer
) -> None:
    code, out, err = run(capsys, "pull", "ollama/tinyllama")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "pulling manifest"
    sizes = ollama_server.layer_sizes("tinyllama")
    for digest, size in sizes.items():
        assert f"layer {digest[7:19]}: {format_bytes(size)}" in lines
    downloads = [line for line in lines if line.startswith("downloading ")]
    percents = [int(d.split()[1].rstrip("%")) for d in downloads]
    # At most one line per 10 %, never backwards, ending at 100 %.
    assert percents == sorted(set(percents)) and all(p % 10 == 0 for p in percents)
    assert percents[-1] == 100
    total = sum(sizes.values())
    assert f"{format_bytes(total)} of {format_bytes(total)}" in downloads[-1]
    assert "verifying sha256 digest" in lines and "writing manifest" in lines
    assert lines[-1] == (
        f"tinyllama:latest is ready on Ollama local (127.0.0.1:{ollama_server.port}) "
        f"({format_bytes(total)}) — use it as ollama/tinyllama:latest"
    )
    assert "\r" not in out and "\033" not in out
    code, out, _ = run(capsys, "models", "--json")
    assert "ollama/tinyllama:latest" in {m["ref"] for m in json.loads(out)["models"]}


def test_pull_on_a_terminal_redraws_one_line(env, capsys, monkeypatch) -> None:
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    assert main(["pull", "phi3:mini"]) == 0  # a bare name: the default Ollama host
    text = term.getvalue()
    frames = text.split("\r\033[K")
    assert any("█" in f and "pulling phi3:mini" in f for f in frames)
    assert frames[-1].startswith("phi3:mini: success\n")
    assert text.endswith("— use it as ollama/phi3:mini\n")


def test_pull_failures_are_one_line(env, capsys, ollama_server: OllamaServer) -> None:
    code, out, err = run(capsys, "pull", "ollama/ghost-model")
    assert code == 1
    (line,) = error_lines(err)
    assert "There is no model named 'ghost-model' to pull" in line and "ollama.com/library" in line
    ollama_server.error_after(6, DISK_FULL_MESSAGE.format(digest="f" * 64), path="/api/pull")
    code, _, err = run(capsys, "pull", "tinyllama")
    (line,) = error_lines(err)
    assert code == 1 and "is full" in line and "resumes" in line
    code, _, err = run(capsys, "pull", "ollama/Bad Name")
    assert code == 1 and error_lines(err) == [
        "halext-desktop: 'Bad Name' is not a valid model name — Names look like llama3.2, "
        "qwen2.5:7b or hf.co/<user>/<repo>:<tag>"
    ]
    ollama_server.stop()
    code, _, err = run(capsys, "pull", "tinyllama")
    (line,) = error_lines(err)
    assert code == 1 and f"Connection refused at 127.0.0.1:{ollama_server.port}" in line


def test_a_host_that_is_not_configured_or_not_ollama(env, capsys) -> None:
    code, _, err = run(capsys, "pull", "ollama@studio/tinyllama")
    assert code == 1 and "No Ollama host named 'studio' is configured" in err
    code, _, err = run(capsys, "rm", "openai/gpt-4o")
    assert code == 1 and "openai is not an Ollama host" in err
    code, _, err = run(capsys, "show", "nowhere/x")
    assert code == 2 and "unknown route 'nowhere'" in err


def _cli_process(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "halext_desktop.app.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_cancels_a_pull_and_the_same_command_resumes(
    env, capsys, ollama_server: OllamaServer
) -> None:
    pause = ollama_server.pause_after(4)  # mid-way through the weights layer
    p = _cli_process("pull", "ollama/tinyllama")
    try:
        assert pause.reached.wait(30) and p.stdout is not None
        # Ctrl+C once the command has shown some bytes arriving (not just sent them).
        shown = ""
        while not re.match(r"downloading [1-9]", shown):
            shown = p.stdout.readline()
            assert shown, "the command ended before showing any progress"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "Traceback" not in err
    (line,) = error_lines(err)
    assert line.startswith("halext-desktop: pull of tinyllama cancelled after ")
    assert "run the same command to resume" in line
    ollama_server.wait_closed_early()  # closing the stream is what stops Ollama
    assert ollama_server.find("tinyllama") is None
    on_disk = ollama_server.downloaded_bytes("tinyllama")
    assert on_disk > 0

    code, out, err = run(capsys, "pull", "ollama/tinyllama")
    assert code == 0, err
    assert f"resuming: {format_bytes(on_disk)} already downloaded" in out.splitlines()
    assert ollama_server.find("tinyllama") is not None


# ---- rm, show, ps -------------------------------------------------------------------------------


def test_rm_says_what_it_freed_and_a_second_rm_is_not_found(
    env, capsys, ollama_server: OllamaServer
) -> None:
    size = ollama_server.find("qwen2.5:7b").size  # type: ignore[union-attr]
    code, out, err = run(capsys, "rm", "ollama/qwen2.5:7b")
    assert code == 0, err
    assert out == (
        f"Deleted qwen2.5:7b from Ollama local (127.0.0.1:{ollama_server.port}); "
        f"freed up to {format_bytes(size)}\n"
    )
    assert ollama_server.find("qwen2.5:7b") is None
    code, _, err = run(capsys, "rm", "ollama/qwen2.5:7b")
    (line,) = error_lines(err)
    assert code == 1 and "'qwen2.5:7b' is not installed on" in line


def test_show_prints_the_model_card_and_json_has_everything(
    env, capsys, ollama_server: OllamaServer
) -> None:
    spec = ollama_server.find("qwen2.5:7b")
    assert spec is not None
    code, out, _ = run(capsys, "show", "ollama/qwen2.5:7b")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"ollama/qwen2.5:7b  ·  Ollama local (127.0.0.1:{ollama_server.port})"
    assert "  architecture  qwen2" in lines
    assert f"  context       {spec.context_length:,} tokens" in lines
    assert "  capabilities  completion, tools" in lines
    assert "  quantization  Q4_K_M" in lines
    assert "Parameters" in lines and "  num_keep  24" in lines
    assert "Template" in lines and "License" in lines
    code, out, _ = run(capsys, "show", "--json", "qwen2.5:7b")
    obj = json.loads(out)
    assert obj["ref"] == "ollama/qwen2.5:7b" and obj["show"] == spec.show()
    code, _, err = run(capsys, "show", "ollama/ghost")
    assert code == 1 and "'ghost' is not installed" in err


def test_ps_lists_loaded_models_and_json(env, capsys, ollama_server: OllamaServer) -> None:
    code, out, _ = run(capsys, "ps")
    assert (code, out) == (0, "No models are loaded.\n")
    with ollama.Client(host=ollama_server.url, timeout=5) as client:
        client.chat(model="qwen2.5:7b", messages=[{"role": "user", "content": "hi"}],
                    keep_alive=-1)  # fmt: skip
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    code, out, _ = run(capsys, "ps")
    header, *rows = out.splitlines()
    assert re.split(r"\s{2,}", header.strip()) == [
        "NAME",
        "HOST",
        "SIZE",
        "PROCESSOR",
        "CONTEXT",
        "UNTIL",
    ]
    assert rows[0].split()[0] == "qwen2.5:7b" and rows[0].endswith("until stopped")
    assert "100% GPU" in rows[0] and "4096" in rows[0]
    assert rows[1].split()[0] == "llama3.2:latest" and re.search(r"in \d+ min", rows[1])
    code, out, _ = run(capsys, "ps", "ollama", "--json")
    loaded = json.loads(out)["loaded"]
    assert [m["ref"] for m in loaded] == ["ollama/qwen2.5:7b", "ollama/llama3.2:latest"]
    assert loaded[0]["vram_bytes"] == loaded[0]["size_bytes"] > 0
    code, _, err = run(capsys, "ps", "ollama@nowhere")
    assert code == 2 and "no Ollama host 'ollama@nowhere'" in err
    ollama_server.stop()
    code, out, err = run(capsys, "ps")
    assert (
        code == 1 and out == "" and f"Connection refused at 127.0.0.1:{ollama_server.port}" in err
    )


# ---- halext nodes, policy ---------------------------------------------------------------------


def test_an_admin_pulls_and_deletes_on_a_halext_node(
    admin, capsys, halext_server: HalextServer
) -> None:
    code, out, err = run(capsys, "pull", "halext/client:3:tinyllama")
    assert code == 0, err
    first, last = out.splitlines()
    assert first == (
        "pulling tinyllama on halext node 3 — halext gives no progress for pulls on a node: "
        "it answers when the pull ends"
    )
    assert last == "Pulled tinyllama:latest on node 3"
    assert "tinyllama:latest" in halext_server.node(3)["models"]
    code, out, _ = run(capsys, "rm", "halext/client:3:tinyllama")
    assert (code, out) == (0, "Deleted tinyllama from node 3\n")
    code, _, err = run(capsys, "pull", "halext/client:3:ghost")
    assert code == 1 and "does not have 'ghost'" in err
    code, _, err = run(capsys, "show", "halext/client:3:qwen2.5:7b")
    assert code == 1 and "no model card for a node's models" in err


def test_an_ordinary_user_cannot_manage_nodes(
    env, capsys, monkeypatch, halext_server: HalextServer
) -> None:
    with HalextServer(users={"dev": "dev123", "amy": "amy-pw"}) as other:
        monkeypatch.setenv("HALEXT_URL", other.url)
        monkeypatch.setenv("HALEXT_USERNAME", "amy")
        monkeypatch.setenv("HALEXT_PASSWORD", "amy-pw")
        code, _, err = run(capsys, "pull", "halext/client:3:tinyllama")
    (line,) = error_lines(err)
    assert code == 1
    assert line == (
        "halext-desktop: Only halext admins can manage AI client nodes (Admin access required) "
        "— Sign in as an admin of this server"
    )


def test_offline_mode_manages_ollama_hosts_only(
    admin, capsys, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    run(capsys, "config", "set", "offline", "true")
    code, _, err = run(capsys, "pull", "halext/client:3:tinyllama")
    assert code == 1 and "offline" in err
    assert run(capsys, "pull", "ollama/tinyllama")[0] == 0
    assert run(capsys, "ps")[0] == 0
    assert halext_server.requests == []


def test_with_cloud_disabled_an_ollama_cloud_model_is_not_pulled(
    env, capsys, ollama_server: OllamaServer
) -> None:
    run(capsys, "config", "set", "disable_cloud", "true")
    code, _, err = run(capsys, "pull", "gpt-oss:120b-cloud")
    (line,) = error_lines(err)
    assert code == 1 and "is an Ollama cloud model" in line and "disabled" in line
    assert ollama_server.requests_to("/api/pull") == []
