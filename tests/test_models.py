"""Models: cards, weights, tags, sample models, and safe .tar.gz export/import."""

import gzip
import io
import json
import os
import tarfile

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from capsule_lib import CapsuleError
from capsule_lib import models as models_mod
from capsule_lib.models import MAX_ARCHIVE_BYTES, ModelCard, ModelRegistry, list_models
from capsule_lib.tags import TagError


def tiny_state(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2).state_dict()


def card_dict(name="imported", technique="gan", **extra):
    return {"name": name, "technique": technique, "status": "complete", **extra}


@pytest.fixture
def samples(tmp_path):
    """A sample-models folder holding one shipped model, 'jazz'."""
    root = tmp_path / "data" / "models"
    folder = root / "jazz"
    folder.mkdir(parents=True)
    card = card_dict("jazz", "gan", algorithm="MuseGAN", dataset="jazz", tags={"capsule:technique": "gan"})
    (folder / "model.json").write_text(json.dumps(card))
    (folder / "weights.safetensors").write_bytes(safetensors_bytes(tiny_state(1)))
    return root


@pytest.fixture
def reg(tmp_path, samples):
    return ModelRegistry(tmp_path / "home", sample_dir=samples)


def trained(reg, name="mine", technique="arcnn"):
    reg.create(name, technique, algorithm="U-Net", dataset="bach", hyperparameters={"epochs": 3, "lr": 0.001})
    reg.save_weights(name, tiny_state())
    return reg.update(name, status="complete", metrics={"loss": 0.25}, training_time_s=12.5)


def no_trace(reg):
    """The registry holds only the sample model, and no temporary folder is left anywhere."""
    assert [c.name for c in reg.list()] == ["jazz"]
    assert not reg.root.exists() or os.listdir(reg.root) == []


# -- cards --------------------------------------------------------------------------------------
def test_card_round_trip_leaves_out_path(tmp_path):
    card = ModelCard("a", "transformer", hyperparameters={"d": 64}, path=tmp_path)
    data = card.to_dict()
    assert "path" not in data and data["sample"] is False
    json.dumps(data)  # plain JSON
    assert ModelCard.from_dict(data) == card


@pytest.mark.parametrize(
    "data, message",
    [
        ({"technique": "gan"}, "no name"),
        ({"name": "a"}, "no technique"),
        ({"name": "a", "technique": "vae"}, "unknown technique 'vae'"),
        ({"name": "a", "technique": "gan", "status": "done"}, "status 'done'"),
        ({"name": "a/b", "technique": "gan"}, "not valid"),
        ({"name": "a", "technique": "gan", "metrics": []}, "'metrics' must be a dict"),
        ({"name": "a", "technique": "gan", "training_time_s": -1}, "training time"),
        ({"name": "a", "technique": "gan", "tags": {"bad#": "x"}}, "not allowed"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_card_validation(data, message):
    with pytest.raises(CapsuleError, match=message):
        ModelCard.from_dict(data)


# -- create / list / get / update / delete -------------------------------------------------------
def test_create_and_get(reg):
    card = reg.create("bach-1", "arcnn", algorithm="U-Net", dataset="jsb", hyperparameters={"lr": 0.001})
    assert card.status == "training" and card.sample is False
    assert card.tags == {"capsule:technique": "arcnn"}
    assert card.path == reg.root / "bach-1"
    assert ModelRegistry(reg.home, sample_dir=reg.sample_dir).get("bach-1") == card
    assert json.loads((card.path / "model.json").read_text())["hyperparameters"] == {"lr": 0.001}


@pytest.mark.parametrize("name", ["", "x" * 65, "a/b", "..", ".hidden", "with space", "ü", "a\\b"])
def test_bad_names(reg, name):
    with pytest.raises(CapsuleError, match="not valid"):
        reg.create(name, "gan")
    assert not reg.root.exists() or os.listdir(reg.root) == []


def test_names_must_be_new_and_cannot_shadow_samples(reg):
    reg.create("x", "gan")
    with pytest.raises(CapsuleError, match="already exists"):
        reg.create("x", "arcnn")
    with pytest.raises(CapsuleError, match="already exists"):
        reg.create("jazz", "gan")
    with pytest.raises(CapsuleError, match="unknown technique"):
        reg.create("y", "diffusion")


def test_list_samples_first_filter_and_shadowing(reg):
    trained(reg, "b-model", "arcnn")
    trained(reg, "a-model", "transformer")
    # A custom folder that tries to shadow a sample is ignored.
    shadow = reg.root / "jazz"
    shadow.mkdir()
    (shadow / "model.json").write_text(json.dumps(card_dict("jazz", "arcnn")))
    names = [c.name for c in reg.list()]
    assert names == ["jazz", "b-model", "a-model"]  # samples, then custom oldest first
    assert [c.sample for c in reg.list()] == [True, False, False]
    assert [c.name for c in reg.list("gan")] == ["jazz"]
    assert [c.name for c in reg.list(technique="transformer")] == ["a-model"]
    assert reg.get("jazz").sample and reg.get("jazz").technique == "gan"
    with pytest.raises(CapsuleError, match="unknown technique"):
        reg.list("rnn")


def test_damaged_models_are_skipped(reg):
    trained(reg)
    (reg.root / "broken").mkdir()
    (reg.root / "broken" / "model.json").write_text("{")
    (reg.root / "empty").mkdir()
    (reg.root / ".tmp-leftover").mkdir()
    assert [c.name for c in reg.list()] == ["jazz", "mine"]
    with pytest.raises(CapsuleError, match="damaged"):
        reg.get("broken")
    for bad in ("nothing", "../home", ".tmp-leftover"):
        with pytest.raises(CapsuleError, match="no model"):
            reg.get(bad)


def test_update(reg):
    card = trained(reg)
    assert card.status == "complete" and card.metrics == {"loss": 0.25} and card.training_time_s == 12.5
    assert reg.get("mine") == card
    with pytest.raises(CapsuleError, match="cannot update model field 'name'"):
        reg.update("mine", name="other")
    with pytest.raises(CapsuleError, match="status 'finished'"):
        reg.update("mine", status="finished")
    with pytest.raises(CapsuleError, match="sample model"):
        reg.update("jazz", status="failed")
    assert reg.get("mine").status == "complete"  # a refused update changes nothing


def test_delete(reg):
    trained(reg)
    reg.delete("mine")
    assert [c.name for c in reg.list()] == ["jazz"]
    assert os.listdir(reg.root) == []
    with pytest.raises(CapsuleError, match="no model mine"):
        reg.delete("mine")
    with pytest.raises(CapsuleError, match="sample model"):
        reg.delete("jazz")
    assert (reg.sample_dir / "jazz" / "model.json").is_file()


# -- weights ---------------------------------------------------------------------------------------
def test_weights_round_trip_and_metadata(reg):
    reg.create("w", "gan")
    with pytest.raises(CapsuleError, match="no weights"):
        reg.load_weights("w")
    state = tiny_state()
    reg.save_weights("w", state, metadata={"epoch": 7, "note": "hi"})
    loaded = reg.load_weights("w")
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert reg.weights_metadata("w") == {"epoch": "7", "note": "hi"}
    assert torch.equal(reg.load_weights("jazz")["weight"], tiny_state(1)["weight"])


def test_tied_and_non_contiguous_tensors_save(reg):
    reg.create("tied", "transformer")
    shared = torch.arange(6.0).reshape(2, 3)
    reg.save_weights("tied", {"a": shared, "b": shared, "t": shared.t()})
    loaded = reg.load_weights("tied")
    assert torch.equal(loaded["t"], shared.t()) and torch.equal(loaded["b"], shared)


def test_bad_state_dicts_and_sample_weights_are_refused(reg):
    reg.create("w", "gan")
    with pytest.raises(CapsuleError, match="not a named tensor"):
        reg.save_weights("w", {"a": [1, 2]})
    with pytest.raises(CapsuleError, match="non-empty"):
        reg.save_weights("w", {})
    with pytest.raises(CapsuleError, match="sample model"):
        reg.save_weights("jazz", tiny_state())


def test_corrupt_weights_file(reg):
    reg.create("w", "gan")
    (reg.root / "w" / "weights.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CapsuleError, match="corrupt"):
        reg.load_weights("w")


def test_failed_weight_save_keeps_old_weights(reg, monkeypatch):
    reg.create("w", "gan")
    reg.save_weights("w", tiny_state(0))
    import safetensors.torch

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(RuntimeError):
        reg.save_weights("w", tiny_state(5))
    monkeypatch.undo()
    assert torch.equal(reg.load_weights("w")["weight"], tiny_state(0)["weight"])
    assert sorted(n for n in os.listdir(reg.root / "w") if not n.endswith(".lock")) == [
        "model.json",
        "weights.safetensors",
    ]  # no temporary weights file left behind


# -- tags ------------------------------------------------------------------------------------------
def test_tags_on_custom_models(reg):
    trained(reg)
    reg.tag("mine", "class", "4B")
    assert reg.get("mine").tags == {"capsule:technique": "arcnn", "class": "4B"}
    reg.untag("mine", "class")
    assert reg.get("mine").tags == {"capsule:technique": "arcnn"}
    with pytest.raises(TagError, match="reserved"):
        reg.tag("mine", "CAPSULE:technique", "gan")
    with pytest.raises(TagError, match="reserved"):
        reg.untag("mine", "capsule:technique")
    with pytest.raises(CapsuleError, match="no model"):
        reg.tag("ghost", "a", "b")


def test_tags_on_sample_models_never_touch_the_sample_folder(reg):
    before = {p.name: p.read_bytes() for p in (reg.sample_dir / "jazz").iterdir()}
    reg.tag("jazz", "favourite", "yes")
    reg.tag("jazz", "level", "1")
    reg.untag("jazz", "level")
    assert reg.get("jazz").tags == {"capsule:technique": "gan", "favourite": "yes"}
    assert [c.tags for c in reg.list("gan")] == [reg.get("jazz").tags]
    after = {p.name: p.read_bytes() for p in (reg.sample_dir / "jazz").iterdir()}
    assert after == before


# -- export / import ----------------------------------------------------------------------------------
def test_export_import_round_trip(reg, tmp_path, samples):
    trained(reg)
    reg.tag("mine", "class", "4B")
    folder = reg.get("mine").path
    (folder / "README.md").write_text("# mine\n")
    (folder / "history.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    (folder / "sample.mid").write_bytes(b"MThd")
    archive = reg.export("mine", tmp_path / "mine.tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        names = sorted(tar.getnames())
        assert all(m.isreg() and m.uid == 0 for m in tar.getmembers())
    assert names == sorted(
        f"mine/{n}" for n in ("model.json", "weights.safetensors", "README.md", "history.json", "sample.mid")
    )

    other = ModelRegistry(tmp_path / "home2", sample_dir=samples)
    card = other.import_archive(archive)
    original = reg.get("mine")
    assert card.to_dict() == original.to_dict()
    assert card.path == other.root / "mine"
    loaded, expected = other.load_weights("mine"), reg.load_weights("mine")
    assert set(loaded) == set(expected) and all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert (card.path / "README.md").read_text() == "# mine\n"

    with pytest.raises(CapsuleError, match="already exists.*name="):
        other.import_archive(archive)
    renamed = other.import_archive(archive, name="mine-copy")
    assert renamed.name == "mine-copy" and renamed.tags["class"] == "4B"
    assert [c.name for c in other.list()] == ["jazz", "mine", "mine-copy"]


def test_export_sample_model_and_into_folder(reg, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    archive = reg.export("jazz", out)
    assert archive == out / "jazz.tar.gz"
    other = ModelRegistry(tmp_path / "home2", sample_dir=tmp_path / "no-samples")
    card = other.import_archive(archive)
    assert card.sample is False and card.algorithm == "MuseGAN"
    with pytest.raises(CapsuleError, match="must end in .tar.gz"):
        reg.export("jazz", tmp_path / "jazz.zip")


def build(path, entries, mode="w:gz"):
    """Hand-craft an archive: entries are (name, bytes) for files or a ready TarInfo."""
    with tarfile.open(path, mode) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def special(name, kind, target=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


CARD = json.dumps(card_dict()).encode()
WEIGHTS = safetensors_bytes(tiny_state())
GOOD = [("imported/model.json", CARD), ("imported/weights.safetensors", WEIGHTS)]


def test_hand_crafted_good_archives_import(reg, tmp_path):
    reg.import_archive(build(tmp_path / "a.tar.gz", GOOD))
    flat = [("./model.json", json.dumps(card_dict("flat")).encode()), ("./weights.safetensors", WEIGHTS)]
    reg.import_archive(build(tmp_path / "b.tgz", flat))
    with_dir = [
        special("d/", tarfile.DIRTYPE),
        ("d/model.json", json.dumps(card_dict("d")).encode()),
        ("d/weights.safetensors", WEIGHTS),
        ("d/notes.txt", b"hello"),
    ]
    reg.import_archive(build(tmp_path / "c.tar.gz", with_dir))
    assert [c.name for c in reg.list()] == ["jazz", "imported", "flat", "d"]
    assert (reg.root / "d" / "notes.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    "entries, message",
    [
        ([("/imported/model.json", CARD), GOOD[1]], "absolute path"),
        ([GOOD[0], GOOD[1], ("imported/../../evil.json", b"{}")], r"contains '\.\.'"),
        ([GOOD[0], GOOD[1], ("../model.json", b"{}")], r"contains '\.\.'"),
        ([GOOD[0], GOOD[1], special("imported/link.json", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link"),
        ([GOOD[0], GOOD[1], special("imported/hard.json", tarfile.LNKTYPE, "imported/model.json")], "hard link"),
        ([GOOD[0], GOOD[1], special("imported/dev.json", tarfile.CHRTYPE)], "device"),
        ([GOOD[0], GOOD[1], special("imported/blk.json", tarfile.BLKTYPE)], "device"),
        ([GOOD[0], GOOD[1], special("imported/pipe.json", tarfile.FIFOTYPE)], "device or pipe"),
        ([GOOD[0], ("imported/weights.pt", b"\x80\x04pickle")], r"weights\.pt is not allowed"),
        ([*GOOD, ("imported/extra.pkl", b"\x80\x04")], r"extra\.pkl is not allowed"),
        ([*GOOD, ("imported/arr.npy", b"\x93NUMPY")], r"arr\.npy is not allowed"),
        ([*GOOD, ("imported/optim.bin", b"x")], "not allowed"),
        ([*GOOD, ("imported/run.py", b"import os")], "not allowed"),
        ([*GOOD, ("imported/Makefile", b"x")], "not allowed"),
        ([GOOD[1]], "no model.json"),
        ([GOOD[0]], "no weights.safetensors"),
        ([("imported/model.json", b"{not json"), GOOD[1]], "model.json is not valid JSON"),
        ([("imported/model.json", b"\xff\xfe"), GOOD[1]], "model.json is not valid JSON"),
        (
            [("imported/model.json", json.dumps(card_dict(technique="vae")).encode()), GOOD[1]],
            "unknown technique 'vae'",
        ),
        ([("imported/model.json", json.dumps(card_dict(name="../evil")).encode()), GOOD[1]], "not valid"),
        ([("imported/model.json", b"[]"), GOOD[1]], "not a JSON object"),
        ([GOOD[0], ("imported/weights.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{bad")], "corrupt"),
        ([*GOOD, ("imported/model.json", CARD)], "appears twice"),
        ([*GOOD, ("imported/sub/x.json", b"{}")], "not inside one model folder"),
        ([*GOOD, special("imported/sub/", tarfile.DIRTYPE)], "nested folder"),
        ([*GOOD, ("other/x.json", b"{}")], "exactly one model folder"),
        ([*GOOD, ("loose.json", b"{}")], "exactly one model folder"),
        ([GOOD[0], ("imported\\weights.safetensors", WEIGHTS)], "unsafe name"),
    ],
)
def test_unsafe_or_broken_archives_are_refused_without_trace(reg, tmp_path, entries, message):
    archive = build(tmp_path / "bad.tar.gz", entries)
    with pytest.raises(CapsuleError, match=message) as info:
        reg.import_archive(archive)
    assert "\n" not in str(info.value)
    no_trace(reg)
    assert not (tmp_path / "evil.json").exists() and not (tmp_path / "home" / "evil.json").exists()


def test_oversize_archives_are_refused(reg, tmp_path, monkeypatch):
    assert MAX_ARCHIVE_BYTES == 200 * 1024 * 1024
    monkeypatch.setattr(models_mod, "MAX_ARCHIVE_BYTES", len(CARD) + len(WEIGHTS) + 100)
    archive = build(tmp_path / "big.tar.gz", [*GOOD, ("imported/README.md", b"x" * 200)])
    with pytest.raises(CapsuleError, match="unpacks to more than"):
        reg.import_archive(archive)
    no_trace(reg)
    reg.import_archive(build(tmp_path / "ok.tar.gz", [*GOOD, ("imported/README.md", b"x" * 50)]))


def test_too_many_members_are_refused(reg, tmp_path, monkeypatch):
    monkeypatch.setattr(models_mod, "MAX_ARCHIVE_MEMBERS", 5)
    entries = [*GOOD] + [(f"imported/{i}.txt", b"") for i in range(6)]
    with pytest.raises(CapsuleError, match="more than 5 entries"):
        reg.import_archive(build(tmp_path / "many.tar.gz", entries))
    no_trace(reg)


def test_corrupt_and_non_gzip_archives(reg, tmp_path):
    good = build(tmp_path / "good.tar.gz", GOOD).read_bytes()
    cases = {
        "random.tar.gz": os.urandom(2000),
        "truncated.tar.gz": good[: len(good) // 2],
        "empty.tar.gz": b"",
        "plain.tar.gz": build(tmp_path / "plain.tar", GOOD, mode="w").read_bytes(),
        "gzip-not-tar.tar.gz": gzip.compress(b"hello world" * 100),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CapsuleError, match="not a valid .tar.gz archive|no model.json") as info:
            reg.import_archive(path)
        assert name in str(info.value) and "\n" not in str(info.value)
        no_trace(reg)
    with pytest.raises(CapsuleError, match="does not exist"):
        reg.import_archive(tmp_path / "missing.tar.gz")


def test_import_name_clash_with_sample_and_bad_name(reg, tmp_path):
    archive = build(tmp_path / "a.tar.gz", GOOD)
    with pytest.raises(CapsuleError, match="already exists"):
        reg.import_archive(archive, name="jazz")
    with pytest.raises(CapsuleError, match="not valid"):
        reg.import_archive(archive, name="../x")
    no_trace(reg)


# -- module helper --------------------------------------------------------------------------------------
def test_list_models_uses_env(tmp_path, monkeypatch, samples):
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("CAPSULE_DATA", str(samples.parent))
    ModelRegistry().create("mine", "transformer")
    assert [c.name for c in list_models()] == ["jazz", "mine"]
    assert [c.name for c in list_models("transformer")] == ["mine"]
