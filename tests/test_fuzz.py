"""Seeded fuzzing of MIDI bytes, command-line flags and model-archive members (issue 18).

Whatever the input, the only outcomes are success or a :class:`CapsuleError` -- on the
command line exit status 0, or 2 with one line on stderr -- and nothing is left behind.
Each fuzzer runs for a few seconds from a fixed seed, so a failure reproduces; set
``CAPSULE_FUZZ_SECONDS`` (and ``CAPSULE_FUZZ_SEED``) to fuzz longer or elsewhere.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import tarfile
import time
from pathlib import Path

import pytest
from safetensors.torch import save as safetensors_bytes

from capsule_lib import CapsuleError, Note, Score, Track, load_sample, midi_bytes, read_midi
from capsule_lib.cli import main
from capsule_lib.edit import set_tempo
from capsule_lib.models import ModelRegistry

SECONDS = float(os.environ.get("CAPSULE_FUZZ_SECONDS", "3"))
SEED = int(os.environ.get("CAPSULE_FUZZ_SEED", "18"))


def _budget(seconds: float = SECONDS):
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        yield count
        count += 1


# -- MIDI bytes ----------------------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    """Valid files with every feature the reader handles: tempo changes, pedals, text, drums, many tracks."""
    ode = load_sample("ode_to_joy")
    rich = Score(
        tracks=(
            Track(
                name="Dvořák",
                program=40,
                notes=tuple(Note(i * 6, 60 + i % 12, 6 + i % 5) for i in range(40)),
                pedals=((0, 48), (60, 90)),
            ),
            Track(name="drums", is_drum=True, notes=tuple(Note(i * 12, 36 + i % 3, 1) for i in range(20))),
        ),
        tempo=90.0,
        time_signature=(7, 8),
        tempo_changes=((48, 140.0), (120, 60.5)),
        title="Humoresque",
    )
    return [midi_bytes(ode), midi_bytes(set_tempo(ode, 40)), midi_bytes(rich)]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.35 and b:  # overwrite bytes (status bytes, lengths, deltas, header fields)
            i = rng.randrange(len(b))
            b[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x90, 0xFF, rng.randrange(256)])
        elif op < 0.5:  # insert
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op < 0.6 and b:  # delete
            i = rng.randrange(len(b))
            del b[i : i + rng.randint(1, 8)]
        elif op < 0.7:  # truncate
            del b[rng.randrange(len(b) + 1) :]
        elif op < 0.75 and len(b) > 14:  # a header field: format, track count, division
            field = rng.choice([8, 10, 12])
            b[field : field + 2] = struct.pack(">H", rng.choice([0, 1, 2, 3, 0x7FFF, 0x8000, 0xE728, 0xFFFF]))
        elif op < 0.8:  # a chunk length
            for i in range(len(b) - 8):
                if b[i : i + 4] in (b"MTrk", b"MThd") and rng.random() < 0.5:
                    b[i + 4 : i + 8] = struct.pack(
                        ">I", rng.choice([0, 1, 6, 0xFFFF, 0x7FFFFFFF, rng.randrange(2**32)])
                    )
                    break
        elif op < 0.85:  # a tempo: 0, the slowest MIDI can hold, or any
            at = b.find(b"\xff\x51\x03", rng.randrange(len(b) + 1))
            if at < 0:
                at = b.find(b"\xff\x51\x03")
            if at >= 0:
                b[at + 3 : at + 6] = rng.choice([0, 1, 0xFFFFFF, rng.randrange(2**24)]).to_bytes(3, "big")
        elif op < 0.88:  # a huge delta time before some event
            i = rng.randrange(len(b) + 1)
            b[i:i] = b"\xff\xff\xff\x7f"
        else:  # a duplicated slice (repeated events, a second track)
            i, j = sorted(rng.randrange(len(b) + 1) for _ in range(2))
            b[j:j] = b[i:j][:4096]
    return bytes(b)


@pytest.mark.slow
def test_mutated_midi_files_read_or_fail_with_one_line_and_what_reads_writes():
    rng = random.Random(SEED)
    seeds = _seeds()
    outcomes = {"read": 0, "refused": 0}
    for n in _budget():
        data = _mutate(rng.choice(seeds), rng)
        try:
            score = read_midi(data, track="all")
        except CapsuleError as exc:
            assert "\n" not in str(exc), (n, data[:64])
            outcomes["refused"] += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure to report
            pytest.fail(f"mutant {n} (seed {SEED}) raised {type(exc).__name__}: {exc}; bytes {data[:80]!r}")
        outcomes["read"] += 1
        again = read_midi(
            midi_bytes(score), track="all", resolution=score.resolution
        )  # what reads, writes and reads back
        assert [t.notes for t in again.tracks] == [t.notes for t in score.tracks], n
    assert outcomes["read"] > 10 and outcomes["refused"] > 10, outcomes  # both paths exercised


# -- command-line flags ------------------------------------------------------------------------------------

NUMBERS = [
    "0",
    "1",
    "-1",
    "12",
    "13",
    "40",
    "160",
    "0.5",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "1e-320",
    "99999999999999999999",
    "",
    "x",
    "٣",
    "0x10",
    " 5",
    "3.5",
    "-0",
]
TEXTS = [
    "a",
    "",
    " ",
    "k=v",
    "capsule:model=x",
    " capsule:x=y",
    "c\u0430psule:x=y",
    "Dvořák",
    "x" * 300,
    "../x",
    "mood=calm",
    "=",
    "a=b=c",
    "\udcff",
    "😀=1",
]


def _argv(rng: random.Random, tmp: Path, melody: Path, comp_id: str) -> list[str]:
    def num():
        return rng.choice(NUMBERS)

    def out(suffixes=(".mid",)):
        return str(
            rng.choice(
                [
                    tmp / f"o{rng.randrange(9)}{rng.choice(suffixes)}",
                    tmp / "plain" / "x.mid",
                    tmp / "dir.mid",
                    tmp / ("y" * 300 + ".mid"),
                    tmp / "o.txt",
                    melody,
                ]
            )
        )

    def inp():
        return rng.choice(
            [str(melody), "ode_to_joy", comp_id, comp_id[:8], "nope", "x" * 300, str(tmp / "bad.mid"), str(tmp), ""]
        )

    command = rng.choice(
        [
            "edit",
            "edit",
            "render",
            "compositions",
            "models",
            "instrument",
            "samples",
            "enhance",
            "extend",
            "accompany",
            "frobnicate",
        ]
    )
    if command == "edit":
        argv = ["edit", inp(), "-o", out()]
        for flag in ("--tempo", "--transpose", "--grid", "--strength"):
            if rng.random() < 0.5:
                argv += [flag, num()]
        if rng.random() < 0.5:
            argv.append("--quantize")
        return argv
    if command == "render":
        return ["render", inp(), "-o", out((".wav", ".mp3", ".ogg"))]
    if command == "instrument":
        return ["instrument", inp(), rng.choice(["0", "1", "-1", "melody", "drums", "9"]), num(), "-o", out()]
    if command == "samples":
        return ["samples"] + (["--json"] if rng.random() < 0.5 else [])
    if command == "compositions":
        action = rng.choice(["list", "show", "add", "tag", "untag", "delete", "export"])
        return {
            "list": ["compositions", "list"],
            "show": ["compositions", "show", inp()],
            "add": ["compositions", "add", inp(), "--title", rng.choice(TEXTS)],
            "tag": ["compositions", "tag", comp_id, rng.choice(TEXTS)],
            "untag": ["compositions", "untag", comp_id, rng.choice(TEXTS)],
            "delete": ["compositions", "delete", rng.choice(["nope", "x" * 300, ""])],
            "export": ["compositions", "export", inp(), "-o", out((".mid", ".wav", ".zip"))],
        }[action]
    if command == "models":
        action = rng.choice(["list", "show", "tag", "untag", "export"])
        name = rng.choice(["arcnn-bach", "nope", "../x", "x" * 300, ""])
        return {
            "list": ["models", "list", "--json"],
            "show": ["models", "show", name],
            "tag": ["models", "tag", name, rng.choice(TEXTS)],
            "untag": ["models", "untag", name, rng.choice(TEXTS)],
            "export": ["models", "export", name, "-o", out((".tar.gz", ".zip"))],
        }[action]
    # The techniques: flags out of range fail before any model is loaded; the fuzzer keeps
    # one flag out of range most of the time, so a few seconds cover many runs.
    flags = {
        "enhance": ["--iterations", "--max-remove-pct", "--max-add", "--creative-risk", "--seed"],
        "extend": ["--threshold", "--creative-risk", "--input-duration", "--max-rest", "--max-note-length", "--seed"],
        "accompany": ["--seed"],
    }.get(command, [])
    argv = [command, inp(), "-o", out()]
    for flag in flags:
        if rng.random() < 0.6:
            argv += [flag, num()]
    if command == "extend":
        argv += ["--extension-duration", rng.choice(["0.5", "-1", "nan", "1e9"])]
    if command == "enhance":
        argv += ["--iterations", rng.choice(["1", "0", "101", "x"])]
    if command in ("enhance", "accompany") and rng.random() < 0.7:
        argv += ["--seed", rng.choice(["-1", "x", "1e3", "18446744073709551616"])]
    return argv


@pytest.mark.slow
def test_random_command_lines_succeed_or_fail_with_one_line(capsys, tmp_path):
    from capsule_lib import write_midi
    from capsule_lib.store import CompositionStore

    melody = tmp_path / "melody.mid"
    write_midi(load_sample("twinkle_twinkle"), melody)
    (tmp_path / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00")
    (tmp_path / "plain").write_text("a file")
    (tmp_path / "dir.mid").mkdir()
    comp_id = CompositionStore().add(load_sample("ode_to_joy")).id
    rng = random.Random(SEED)
    codes = {0: 0, 2: 0}
    for _n in _budget(SECONDS + 2):
        argv = _argv(rng, tmp_path, melody, comp_id)
        code = main(argv)
        out, err = capsys.readouterr()
        assert code in (0, 2), f"{argv!r} exited {code}: {err.strip()}"
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("capsule: error: "), (argv, err)
        codes[code] += 1
        leftovers = [
            p.name for p in tmp_path.iterdir() if p.name.startswith(".") and p.name.endswith((".tmp", ".probe"))
        ]
        assert not leftovers, (argv, leftovers)
    assert codes[0] > 5 and codes[2] > 5, codes


# -- archive members -----------------------------------------------------------------------------------------


def _card(rng: random.Random) -> bytes:
    card = {
        "name": "fuzzed",
        "technique": rng.choice(["arcnn", "gan", "transformer", "vae", 3]),
        "status": rng.choice(["complete", "training", "done"]),
        "algorithm": "x",
        "dataset": "y",
    }
    shipped = json.loads(
        (Path(__file__).resolve().parent.parent / "data" / "models" / "musegan-chorale" / "model.json").read_text()
    )
    if rng.random() < 0.4:
        card["technique"] = "gan"
        card["hyperparameters"] = json.loads(json.dumps(shipped["hyperparameters"]))
    hp = card.setdefault("hyperparameters", {})
    for _ in range(rng.randint(0, 3)):
        target = rng.choice(
            [
                "model",
                "genre",
                "polyphony",
                "switch_penalty",
                "fold",
                "training",
                "metrics",
                "tags",
                "training_time_s",
                "name",
                "description",
            ]
        )
        value = rng.choice(
            [
                None,
                -1,
                0,
                10**9,
                1e308,
                "text",
                [],
                {},
                [1, "a"],
                {"width": 10**6},
                True,
                {"tracks": [1, 2], "programs": [0, 0], "name": "g"},
                "x" * 200_000,
                [[[[[]]]]],
            ]
        )
        if target in ("metrics", "tags", "training_time_s", "name", "description"):
            card[target] = value
        else:
            hp[target] = value
    text = json.dumps(card).encode()
    kind = rng.random()
    if kind < 0.1:
        return b"[" * 5000 + b"]" * 5000
    if kind < 0.2:
        return text.replace(b"0", b"NaN", 1)
    if kind < 0.3 and text:
        i = rng.randrange(len(text))
        return text[:i] + bytes([rng.randrange(256)]) + text[i + 1 :]
    return text


def _member(name: str, data: bytes, rng: random.Random) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.type = rng.choice(
        [tarfile.REGTYPE] * 12
        + [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.GNUTYPE_SPARSE]
    )
    if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = rng.choice(["/etc/passwd", "../x", "fuzzed/model.json"])
    return info


def _archive(rng: random.Random, path: Path, weights: bytes) -> Path:
    names = [
        "fuzzed/model.json",
        "fuzzed/weights.safetensors",
        "fuzzed/README.md",
        "fuzzed/x.pkl",
        "../evil.json",
        "/abs/model.json",
        "fuzzed/sub/x.json",
        "other/model.json",
        "fuzzed/" + "n" * rng.choice([50, 200, 70_000]),
        "fuzzed\\w.json",
        "./model.json",
        "fuzzed/model.json",
        "fuzzed/history.json",
    ]
    contents = {
        "fuzzed/model.json": _card(rng),
        "fuzzed/weights.safetensors": rng.choice([weights, weights[:20], b"{}"]),
        "fuzzed/history.json": rng.choice([b"[]", b'[{"loss": 1.0}]', b"[" * 3000 + b"]" * 3000, b"[Infinity]"]),
    }
    raw = io.BytesIO()
    fmt = rng.choice([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
    try:
        with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
            chosen = ["fuzzed/model.json", "fuzzed/weights.safetensors"] + rng.sample(names, rng.randint(0, 3))
            rng.shuffle(chosen)
            for name in chosen:
                data = contents.get(name, b"x" * rng.randint(0, 100))
                info = _member(name, data, rng) if rng.random() < 0.3 else tarfile.TarInfo(name)
                if info.type == tarfile.REGTYPE:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    info.size = 0
                    tar.addfile(info)
    except ValueError:  # a name the format cannot hold: write a plain one instead
        return _archive(rng, path, weights)
    blob = raw.getvalue()
    import gzip

    packed = gzip.compress(blob)
    if rng.random() < 0.15:  # damage the gzip stream itself
        i = rng.randrange(len(packed))
        packed = packed[:i] + bytes([rng.randrange(256)]) + packed[i + 1 :]
    path.write_bytes(packed)
    return path


@pytest.mark.slow
def test_random_archives_import_or_fail_with_one_line_leaving_nothing(tmp_path):
    import torch

    weights = safetensors_bytes(torch.nn.Linear(3, 2).state_dict())
    reg = ModelRegistry(tmp_path / "home", sample_dir=tmp_path / "no-samples")
    rng = random.Random(SEED)
    outcomes = {"imported": 0, "refused": 0}
    for n in _budget():
        archive = _archive(rng, tmp_path / f"a{n}.tar.gz", weights)
        try:
            card = reg.import_archive(archive, name=f"m{n}")
        except CapsuleError as exc:
            assert "\n" not in str(exc), n
            outcomes["refused"] += 1
        except Exception as exc:  # pragma: no cover - the failure to report
            pytest.fail(f"archive {n} (seed {SEED}) raised {type(exc).__name__}: {exc}")
        else:
            outcomes["imported"] += 1
            assert reg.get(card.name).to_dict() == card.to_dict()
        hidden = [p.name for p in reg.root.iterdir() if p.name.startswith(".")] if reg.root.exists() else []
        assert not hidden, (n, hidden)  # a refused import leaves no temporary folder
        assert not (tmp_path / "evil.json").exists() and not Path("/abs/model.json").exists()
        archive.unlink()
    assert outcomes["imported"] > 0 and outcomes["refused"] > 10, outcomes
