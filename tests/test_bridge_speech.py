"""The pack's own clips (``bridge_speech``): loaded and checked with the pack, played as Realtime events."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from hybrid_agent.policy.loader import load_pack
from hybrid_agent.protocol.events import validate_server_event
from hybrid_agent.session.bridge_speech import BridgeSpeech

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies" / "retail-banking"


def lint(pack: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hybrid_agent", "policy", "lint", str(pack)],
                          capture_output=True, text=True, timeout=60)


def write_wav(path: Path, *, channels: int = 1, width: int = 2, rate: int = 16000, seconds: float = 1.0) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x00" * int(rate * seconds) * channels * width)


@pytest.mark.parametrize("fmt, bytes_per_s", [("audio/pcm", 48000), ("audio/pcmu", 8000), ("audio/pcma", 8000)])
def test_a_clip_is_a_complete_response_in_the_calls_format(fmt: str, bytes_per_s: int) -> None:
    clips = load_pack(PACK).clips
    speech = BridgeSpeech(clips)
    events = [{"event_id": f"event_{i}", **e} for i, e in enumerate(speech.events("outage_apology", fmt))]
    for event in events:
        validate_server_event(event)  # the openai SDK's own types
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.done"
    audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    assert abs(len(audio) - clips["outage_apology"].duration_ms / 1000 * bytes_per_s) <= 4
    assert events[-1]["response"]["output"][0]["content"][0]["transcript"] == clips["outage_apology"].text
    assert speech.events("no_such_clip", fmt) == []


def test_the_shipped_clips_load_resampled_to_24_khz() -> None:
    clips = load_pack(PACK).clips
    assert set(clips) == {"outage_apology", "goodbye"}
    assert all(3000 < c.duration_ms < 8000 for c in clips.values())


@pytest.mark.parametrize("make, message", [
    (lambda clips: (clips / "goodbye.wav").unlink(), "does not exist in the pack folder"),
    (lambda clips: write_wav(clips / "goodbye.wav", channels=2), "must be mono 16-bit PCM"),
    (lambda clips: write_wav(clips / "goodbye.wav", rate=4000), "is sampled at 4000 Hz"),
    (lambda clips: write_wav(clips / "goodbye.wav", seconds=25), "lasts 25.0 s"),
    (lambda clips: (clips / "goodbye.wav").write_bytes(b"RIFF not a wave"), "is not a readable WAV file"),
])
def test_a_bad_clip_is_a_lint_error_naming_the_file(tmp_path: Path, make: object, message: str) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    make(pack / "clips")  # type: ignore[operator]
    result = lint(pack)
    assert result.returncode != 0
    assert "bridge_speech.goodbye.file" in result.stdout + result.stderr and message in result.stdout + result.stderr


def test_a_clip_outside_the_pack_folder_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    write_wav(tmp_path / "elsewhere.wav")
    manifest = pack / "pack.yaml"
    manifest.write_text(manifest.read_text().replace("file: clips/goodbye.wav", "file: ../elsewhere.wav"))
    result = lint(pack)
    assert result.returncode != 0 and "outside the pack folder" in result.stdout + result.stderr
