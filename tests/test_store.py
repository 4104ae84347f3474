"""Compositions: save, list, load, tag, delete, export; crash and concurrency safety."""

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from capsule_lib import CapsuleError, Note, Score, Track
from capsule_lib import store as store_mod
from capsule_lib.midi import read_midi
from capsule_lib.paths import capsule_home, data_dir, sample_models_dir
from capsule_lib.store import (
    Composition,
    CompositionStore,
    jsonable,
    list_compositions,
    load_composition,
    save_composition,
)
from capsule_lib.tags import TagError


def melody(shift=0, title="tune"):
    return Score.from_notes([(0, 60 + shift, 4), (4, 64 + shift, 4), (8, 67 + shift, 8)], resolution=4, title=title)


def duet():
    lead = Track("lead", 0, False, (Note(0, 72, 6), Note(6, 74, 6)))
    bass = Track("bass", 33, False, (Note(0, 36, 12),))
    drums = Track("drums", 0, True, (Note(0, 36, 1), Note(3, 38, 1)))
    return Score((lead, bass, drums), tempo=96, time_signature=(3, 4), resolution=6, title="Duet")


@pytest.fixture
def store(tmp_path):
    return CompositionStore(tmp_path / "home")


def visible(root: Path):
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


# -- paths -------------------------------------------------------------------------------------
def test_capsule_home_follows_env_and_is_created(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "home"
    monkeypatch.setenv("CAPSULE_HOME", str(target))
    assert capsule_home() == target and target.is_dir()


def test_capsule_home_defaults_to_dot_capsule(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPSULE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert capsule_home() == tmp_path / ".capsule"
    assert (tmp_path / ".capsule").is_dir()


def test_capsule_home_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path / "file"))
    with pytest.raises(CapsuleError, match="not a folder"):
        capsule_home()


def test_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPSULE_DATA", raising=False)
    assert data_dir() == Path(store_mod.__file__).resolve().parent.parent / "data"
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert sample_models_dir() == tmp_path / "models"


# -- saving and loading ---------------------------------------------------------------------
def test_add_records_provenance_and_loads_back_exactly(store):
    score = duet()
    comp = store.add(score, technique="gan", model="jazz-musegan", parameters={"temperature": 0.5})
    assert comp.technique == "gan" and comp.model == "jazz-musegan" and comp.parent is None
    assert comp.title == "Duet"
    assert (comp.n_tracks, comp.n_notes) == (3, 5)
    assert comp.duration_seconds == pytest.approx(score.duration_seconds)
    assert comp.tags == {"capsule:technique": "gan", "capsule:model": "jazz-musegan"}
    assert comp.created.endswith("Z")
    assert store.load(comp.id) == score
    assert store.get(comp.id) == comp
    on_disk = json.loads((store.root / comp.id / "meta.json").read_text())
    assert on_disk == comp.to_dict()
    assert read_midi(store.midi_path(comp.id), track="all", resolution=6) == score


def test_parent_chain_and_parent_tag(store):
    first = store.add(melody(), technique="import")
    second = store.add(melody(2), technique="arcnn", parent=first.id[:18])
    third = store.add(melody(4), technique="transformer", parent=second)
    assert second.parent == first.id and third.parent == second.id
    assert third.tags["capsule:parent"] == second.id
    with pytest.raises(CapsuleError, match="no composition nope"):
        store.add(melody(), technique="gan", parent="nope")
    assert len(store.list()) == 3


def test_default_title_and_explicit_title(store):
    untitled = Score.from_notes([(0, 60, 4)], resolution=4)
    assert store.add(untitled, technique="arcnn").title.startswith("arcnn ")
    assert store.add(untitled, technique="arcnn", title="Mine").title == "Mine"


def test_ids_are_unique_and_list_is_oldest_first(store):
    made = [store.add(melody(i), technique="import") for i in range(12)]
    ids = [c.id for c in made]
    assert len(set(ids)) == 12
    assert [c.id for c in store.list()] == ids
    assert sorted(ids) == ids  # ids sort in time order
    assert [c.created for c in store.list()] == sorted(c.created for c in made)


def test_empty_score_and_non_scores_are_refused(store):
    with pytest.raises(CapsuleError, match="no notes"):
        store.add(Score(), technique="import")
    with pytest.raises(CapsuleError, match="Score"):
        store.add([1, 2, 3])
    assert store.list() == []


def test_parameters_are_made_json(store):
    params = {
        "iterations": np.int64(100),
        "risk": np.float32(0.5),
        "keep": np.bool_(True),
        "programs": np.array([0, 33, 25]),
        "window": (4, 8),
        "nested": {"top_k": np.float64(0.8)},
    }
    comp = store.add(melody(), technique="arcnn", parameters=params)
    meta = json.loads((store.root / comp.id / "meta.json").read_text())
    assert meta["parameters"] == {
        "iterations": 100,
        "risk": 0.5,
        "keep": True,
        "programs": [0, 33, 25],
        "window": [4, 8],
        "nested": {"top_k": 0.8},
    }
    assert type(meta["parameters"]["iterations"]) is int


@pytest.mark.parametrize(
    "params, message",
    [
        ({"f": object()}, "cannot be saved as JSON"),
        ({"x": float("nan")}, "finite"),
        ({1: "a"}, "keys must be text"),
        ({"a": np.array([object()], dtype=object)}, "cannot be saved as JSON"),
        ([1, 2], "must be a dict"),
    ],
)
def test_bad_parameters_are_refused_and_nothing_is_saved(store, params, message):
    with pytest.raises(CapsuleError, match=message):
        store.add(melody(), technique="arcnn", parameters=params)
    assert store.list() == []


def test_jsonable_refuses_cycles():
    loop = []
    loop.append(loop)
    with pytest.raises(CapsuleError, match="nested too deeply"):
        jsonable(loop)


# -- finding -----------------------------------------------------------------------------------
def test_get_by_unique_prefix_and_errors(store):
    a = store.add(melody(), technique="import")
    b = store.add(melody(1), technique="import")
    assert store.get(a.id[:-2]) == a
    common = os.path.commonprefix([a.id, b.id])
    with pytest.raises(CapsuleError, match="matches 2 compositions"):
        store.get(common)
    for bad in ("missing", "../" + a.id, "", ".tmp-x", None):
        with pytest.raises(CapsuleError, match="no composition"):
            store.get(bad)


def test_list_skips_damaged_and_half_written_entries(store):
    good = store.add(melody(), technique="import")
    root = store.root
    (root / "20200101T000000-000000-deadbeef").mkdir()  # no files at all
    bad_meta = root / "20200101T000000-000000-badmeta0"
    bad_meta.mkdir()
    (bad_meta / "score.mid").write_bytes((root / good.id / "score.mid").read_bytes())
    (bad_meta / "meta.json").write_text("{ not json")
    no_midi = root / "20200101T000000-000000-nomidi00"
    no_midi.mkdir()
    (no_midi / "meta.json").write_text((root / good.id / "meta.json").read_text())
    wrong_shape = root / "20200101T000000-000000-wrong000"
    wrong_shape.mkdir()
    (wrong_shape / "score.mid").write_bytes(b"MThd")
    (wrong_shape / "meta.json").write_text(json.dumps({"id": 3}))
    leftover = root / ".tmp-killed"  # what a killed process leaves behind
    leftover.mkdir()
    (leftover / "meta.json").write_text((root / good.id / "meta.json").read_text())
    (leftover / "score.mid").write_bytes(b"x")
    (root / "stray-file.txt").write_text("hi")
    assert [c.id for c in store.list()] == [good.id]
    with pytest.raises(CapsuleError, match="damaged"):
        store.get("20200101T000000-000000-badmeta0")


def test_crash_mid_add_leaves_no_trace(store, monkeypatch):
    saved = store.add(melody(), technique="import")
    before = sorted(os.listdir(store.root))

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store_mod, "atomic_write_text", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        store.add(melody(3), technique="gan")
    monkeypatch.undo()
    assert sorted(os.listdir(store.root)) == before  # no temp folder, visible or hidden
    assert [c.id for c in store.list()] == [saved.id]
    assert store.load(saved.id) == melody()


def test_crash_at_the_rename_leaves_no_trace(store, monkeypatch):
    saved = store.add(melody(), technique="import")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod.os, "rename", crash)
    with pytest.raises(CapsuleError, match="cannot save the composition.*(?i:no space left)"):
        store.add(melody(3), technique="gan")
    monkeypatch.undo()
    assert os.listdir(store.root) == [saved.id]


def test_stale_leftovers_are_swept_on_add(store):
    store.add(melody(), technique="import")
    stale = store.root / ".tmp-old"
    stale.mkdir()
    os.utime(stale, (1, 1))
    fresh = store.root / ".tmp-fresh"  # may belong to a save in progress elsewhere
    fresh.mkdir()
    store.add(melody(1), technique="import")
    assert not stale.exists() and fresh.exists()


# -- tags and delete ------------------------------------------------------------------------------
def test_tag_untag_persist(store):
    comp = store.add(melody(), technique="arcnn", tags={"mood": "calm"})
    assert comp.tags["mood"] == "calm"
    store.tag(comp.id, "mood", "bright")
    store.tag(comp.id, "class", "4B")
    assert CompositionStore(store.home).get(comp.id).tags == {
        "capsule:technique": "arcnn",
        "mood": "bright",
        "class": "4B",
    }
    store.untag(comp.id, "class")
    assert "class" not in store.get(comp.id).tags
    with pytest.raises(TagError, match="reserved"):
        store.untag(comp.id, "capsule:technique")
    with pytest.raises(TagError, match="reserved"):
        store.tag(comp.id, "Capsule:technique", "gan")
    with pytest.raises(TagError, match="no tag"):
        store.untag(comp.id, "class")
    assert store.get(comp.id).tags["capsule:technique"] == "arcnn"


def test_rename_changes_only_the_title_and_keeps_it_on_one_line(store):
    parent = store.add(melody(), technique="sample", title="tune")
    comp = store.add(melody(2), technique="arcnn", parent=parent.id, tags={"mood": "calm"})
    renamed = store.rename(comp.id[:20], "  My   best\ttune ")
    assert renamed.title == "My best tune"
    again = CompositionStore(store.home).get(comp.id)
    assert again.title == "My best tune"
    assert (again.parent, again.tags, again.technique, again.created) == (parent.id, comp.tags, "arcnn", comp.created)
    assert store.load(comp.id).notes == melody(2).notes
    for bad in ("", "   ", None, "x" * 257):
        with pytest.raises(CapsuleError):
            store.rename(comp.id, bad)
    assert store.get(comp.id).title == "My best tune"
    with pytest.raises(CapsuleError, match="no composition"):
        store.rename("nope", "title")


def test_bad_tags_at_add_save_nothing(store):
    with pytest.raises(TagError, match="reserved"):
        store.add(melody(), technique="gan", tags={"capsule:model": "fake"})
    with pytest.raises(TagError, match="not allowed"):
        store.add(melody(), technique="gan", tags={"bad#key": "x"})
    assert store.list() == []


def test_fifty_user_tags_per_composition(store):
    comp = store.add(melody(), technique="gan", model="m", tags={f"t{i}": "" for i in range(49)})
    store.tag(comp.id, "t49", "last")
    with pytest.raises(TagError, match="at most 50"):
        store.tag(comp.id, "t50", "x")


def test_delete(store):
    keep = store.add(melody(), technique="import")
    gone = store.add(melody(1), technique="import")
    store.delete(gone.id[:20])
    assert [c.id for c in store.list()] == [keep.id]
    assert os.listdir(store.root) == [keep.id]  # the trash folder is gone too
    for action in (store.get, store.load, store.delete, lambda i: store.tag(i, "a", "b")):
        with pytest.raises(CapsuleError, match="no composition"):
            action(gone.id)


# -- export --------------------------------------------------------------------------------------
def test_export_midi(store, tmp_path):
    comp = store.add(duet(), technique="gan")
    out = store.export(comp.id, tmp_path / "out" / "song.MID")
    assert out.read_bytes() == store.midi_path(comp.id).read_bytes()
    assert read_midi(out, track="all", resolution=6) == duet()
    folder = tmp_path / "downloads"
    folder.mkdir()
    assert store.export(comp.id, folder) == folder / f"{comp.id}.mid"
    with pytest.raises(CapsuleError, match="use a .mid"):
        store.export(comp.id, tmp_path / "song.ogg")


def test_export_wav(store, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "builtin")
    comp = store.add(melody(), technique="import")
    out = store.export(comp.id, tmp_path / "song.wav")
    data = out.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) > 1000


# -- module helpers ---------------------------------------------------------------------------------
def test_module_helpers_use_capsule_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path / "h"))
    comp = save_composition(melody(), "transformer", parameters={"k": 1})
    assert isinstance(comp, Composition)
    assert (tmp_path / "h" / "compositions" / comp.id / "score.mid").is_file()
    assert [c.id for c in list_compositions()] == [comp.id]
    assert load_composition(comp.id) == melody()


# -- concurrency ----------------------------------------------------------------------------------
def _save_many(args):
    home, worker = args
    store = CompositionStore(home)
    return [store.add(melody(worker), technique="import", tags={"worker": str(worker)}).id for _ in range(20)]


def _tag_many(args):
    home, cid, worker = args
    store = CompositionStore(home)
    for i in range(20):
        store.tag(cid, f"w{worker}-{i}", str(i))
    return True


def _pool():
    return multiprocessing.get_context("fork").Pool(2)


def test_two_processes_saving_at_once_both_succeed(store):
    with _pool() as pool:
        results = pool.map(_save_many, [(str(store.home), 0), (str(store.home), 1)])
    ids = [i for r in results for i in r]
    assert len(set(ids)) == 40
    listed = store.list()
    assert sorted(c.id for c in listed) == sorted(ids)
    for c in listed:
        assert store.load(c.id) == melody(int(c.tags["worker"]))


def test_two_processes_tagging_one_composition_lose_nothing(store):
    comp = store.add(melody(), technique="import")
    with _pool() as pool:
        assert pool.map(_tag_many, [(str(store.home), comp.id, w) for w in (0, 1)]) == [True, True]
    tags = store.get(comp.id).tags
    assert {k for k in tags if k.startswith("w")} == {f"w{w}-{i}" for w in (0, 1) for i in range(20)}
    assert not [n for n in os.listdir(store.root / comp.id) if n.endswith(".tmp")]


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from capsule_lib.atomic import atomic_write_bytes

    mask = os.umask(0o022)
    os.umask(mask)
    new = atomic_write_bytes(tmp_path / "new.mid", b"x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~mask
    old = tmp_path / "old.mid"
    old.write_bytes(b"a")
    old.chmod(0o640)
    atomic_write_bytes(old, b"b")
    assert stat.S_IMODE(old.stat().st_mode) == 0o640 and old.read_bytes() == b"b"
