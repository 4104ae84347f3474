"""Hostile model archives and cards (issue 18 items 4 and 7): every resource is bounded.

A card is checked against :mod:`capsule_lib.card_schema` on import and on every load;
archive headers and members are capped; a network must fit its weights before it is
allocated; killed imports leave nothing that lasts.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time

import pytest
import torch
from safetensors.torch import save as safetensors_bytes
from test_models import build, card_dict, no_trace, reg, samples, tiny_state  # noqa: F401 (reg, samples: fixtures)

from capsule_lib import CapsuleError, card_schema
from capsule_lib.models import MAX_HEADER_BYTES, ModelRegistry, load_network
from capsule_lib.paths import sample_models_dir

WEIGHTS = safetensors_bytes(tiny_state())


def shipped_card(name: str) -> dict:
    return json.loads((sample_models_dir() / name / "model.json").read_text())


def archive_of(tmp_path, card: dict | bytes, *extra, name="bad.tar.gz"):
    data = card if isinstance(card, bytes) else json.dumps(card).encode()
    return build(tmp_path / name, [("imported/model.json", data), ("imported/weights.safetensors", WEIGHTS), *extra])


def gan_card(**hp_changes) -> dict:
    card = shipped_card("musegan-chorale")
    card["name"] = "imported"
    card["hyperparameters"].update(hp_changes)
    return card


# -- 4. the card schema -----------------------------------------------------------------------------


def test_every_shipped_card_passes_the_schema():
    names = sorted(p.name for p in sample_models_dir().iterdir() if (p / "model.json").is_file())
    assert [c.name for c in ModelRegistry().list()] == names  # none skipped as damaged
    for name in names:
        card = shipped_card(name)
        card_schema.check_hyperparameters(card["technique"], card["hyperparameters"])


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"model": {"algorithm": "musegan", "n_tracks": 4, "z_dim": 32, "width": 10**6, "critic_width": 64}},
            r"model.width must be a whole number 1-512",
        ),
        (
            {"model": {"algorithm": "musegan", "n_tracks": 5000, "z_dim": 32, "width": 64, "critic_width": 64}},
            r"model.n_tracks must be a whole number 2-16",
        ),
        ({"model": "musegan"}, r"hyperparameters.model must be an object"),
        ({"model": [1, 2]}, r"hyperparameters.model must be an object"),
        ({"genre": {"name": "x", "tracks": [1, 2, 3, 4], "programs": [0, 0, 0, 0]}}, r"genre.tracks\[0\] must be text"),
        (
            {"genre": {"name": "x", "tracks": ["a", "b", "c"], "programs": [0, 0, 0]}},
            "must name the network's 4 tracks",
        ),
        ({"genre": {"name": "x", "tracks": ["a", "b", "c", "d"], "programs": [0, 0, 0, 300]}}, r"programs\[3\]"),
        ({"genre": "chorale"}, r"genre must be an object"),
        ({"polyphony": [1, 1]}, "one value per track"),
        ({"polyphony": ["1", 1, 1, 1]}, r"polyphony\[0\]"),
        ({"switch_penalty": [0.1]}, "one value per accompaniment track"),
        ({"rest_weight": [-1.0, 1.0, 1.0]}, r"rest_weight\[0\]"),
        ({"fold": "3"}, "fold must be a whole number 0-9"),
    ],
)
def test_gan_cards_with_fields_of_the_wrong_type_or_range_are_refused_on_import(reg, tmp_path, changes, message):
    with pytest.raises(CapsuleError, match=message) as info:
        reg.import_archive(archive_of(tmp_path, gan_card(**changes)))
    assert "\n" not in str(info.value)
    no_trace(reg)


@pytest.mark.parametrize(
    "technique, model, message",
    [
        ("arcnn", {"base_channels": 4096, "depth": 4}, "base_channels must be a whole number 4-64"),
        ("arcnn", {"base_channels": 16, "depth": 4.5}, "depth must be a whole number 1-4"),
        ("transformer", {"d_model": 1 << 20}, "d_model must be a whole number 8-1024"),
        ("transformer", {"n_layers": True}, "n_layers must be a whole number"),
        ("transformer", {"dropout": "0.1"}, "dropout must be a finite number"),
    ],
)
def test_network_shapes_out_of_range_are_refused_on_import(reg, tmp_path, technique, model, message):
    card = card_dict(technique=technique, hyperparameters={"model": model})
    with pytest.raises(CapsuleError, match=message):
        reg.import_archive(archive_of(tmp_path, card))
    no_trace(reg)


def test_extra_well_typed_fields_a_newer_card_adds_are_accepted(reg, tmp_path):
    card = gan_card(new_decoder_setting={"per_track": [0.5, 0.5, 0.5], "mode": "gibbs"}, notes="retrained")
    card["hyperparameters"]["model"]["future_option"] = 3
    card["metrics"]["new_metric"] = [1.5, 2.5]
    card["new_top_level_field"] = {"anything": "within the bounds"}
    assert reg.import_archive(archive_of(tmp_path, card)).name == "imported"


def test_a_deeply_nested_card_is_refused_not_a_recursion_error(reg, tmp_path):
    deep = b'{"name": "imported", "technique": "gan", "metrics": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    with pytest.raises(CapsuleError, match="nested too deeply"):
        reg.import_archive(archive_of(tmp_path, deep))
    shallow_but_too_deep = card_dict(metrics=json.loads("[" * 40 + "]" * 40))
    with pytest.raises(CapsuleError, match="nested too deeply"):
        reg.import_archive(archive_of(tmp_path, shallow_but_too_deep, name="b.tar.gz"))
    no_trace(reg)


@pytest.mark.parametrize(
    "text",
    [
        b'{"name": "imported", "technique": "gan", "training_time_s": NaN}',
        b'{"name": "imported", "technique": "gan", "training_time_s": 1e999}',
        b'{"name": "imported", "technique": "gan", "metrics": {"x": -Infinity}}',
    ],
)
def test_non_finite_numbers_are_refused(reg, tmp_path, text):
    with pytest.raises(CapsuleError, match="number"):
        reg.import_archive(archive_of(tmp_path, text))


@pytest.mark.parametrize("history", [b"[" * 100_000 + b"]" * 100_000, b"[NaN]", b"{not json"])
def test_every_json_file_of_an_archive_is_bounded_like_the_card(reg, tmp_path, history):
    with pytest.raises(CapsuleError, match="history.json"):
        reg.import_archive(archive_of(tmp_path, card_dict(), ("imported/history.json", history)))
    no_trace(reg)


def test_a_card_damaged_on_disk_is_skipped_by_list_and_refused_by_get(reg):
    folder = reg.root / "bad"  # written straight into the registry, not imported
    folder.mkdir(parents=True)
    card = gan_card(model={"algorithm": "musegan", "n_tracks": 4, "z_dim": 32, "width": 10**6, "critic_width": 64})
    card["name"] = "bad"
    (folder / "model.json").write_text(json.dumps(card))
    (folder / "weights.safetensors").write_bytes(WEIGHTS)
    assert "bad" not in [c.name for c in reg.list()]
    with pytest.raises(CapsuleError, match="model bad is damaged.*width"):
        reg.get("bad")
    (folder / "model.json").write_bytes(b"[" * 50_000 + b"]" * 50_000)
    with pytest.raises(CapsuleError, match="nested too deeply"):
        reg.get("bad")


def test_a_card_too_big_is_refused_from_its_header(reg, tmp_path, monkeypatch):
    from capsule_lib import models

    monkeypatch.setattr(models, "MAX_CARD_BYTES", 1000)
    card = card_dict(description="x" * 2000)
    with pytest.raises(CapsuleError, match="JSON files hold at most"):
        reg.import_archive(archive_of(tmp_path, card))
    no_trace(reg)


def test_a_network_that_does_not_fit_its_weights_is_never_allocated(reg, tmp_path):
    """Within the schema's ranges a card can still ask for 537 M parameters; with small
    weights it is refused after a shape check on torch's meta device, before any memory."""
    from capsule_lib.techniques.transformer.model import TransformerConfig, TransformerXL

    big = {"vocab_size": 4096, "d_model": 1024, "n_heads": 16, "n_layers": 24, "d_ff": 8192}
    reg.import_archive(archive_of(tmp_path, card_dict(technique="transformer", hyperparameters={"model": big})))
    built_on = []

    def build(config):
        built_on.append(torch.empty(0).device.type)
        return TransformerXL(config)

    start = time.perf_counter()
    with pytest.raises(CapsuleError, match="do not fit its config"):
        load_network("imported", "transformer", "a Transformer", build, TransformerConfig.from_dict, registry=reg)
    assert built_on == ["meta"]
    assert time.perf_counter() - start < 30  # a real 537 M-parameter build would take minutes and 2 GB


def test_a_gan_whose_model_is_not_an_object_is_refused_not_a_type_error():
    from capsule_lib.techniques.gan.model import GanConfig

    with pytest.raises(CapsuleError, match="not a dict"):
        GanConfig.from_dict("musegan")
    with pytest.raises(CapsuleError, match="width must be a whole number 1-512"):
        GanConfig(width=10**6)


@pytest.mark.parametrize("technique", sorted(card_schema.MODEL_FIELDS))
def test_the_schema_and_the_config_classes_agree_on_every_range(technique):
    from capsule_lib.techniques.arcnn.model import ArcnnConfig
    from capsule_lib.techniques.gan.model import GanConfig
    from capsule_lib.techniques.transformer.model import TransformerConfig

    config = {"arcnn": ArcnnConfig, "gan": GanConfig, "transformer": TransformerConfig}[technique]
    base = config().to_dict()
    for field in card_schema.MODEL_FIELDS[technique]:
        value = base[field]
        if isinstance(value, str):
            continue
        for probe in (
            0,
            1,
            2,
            3,
            4,
            7,
            8,
            9,
            15,
            16,
            17,
            24,
            25,
            63,
            64,
            65,
            511,
            512,
            513,
            1023,
            1024,
            1025,
            4095,
            4096,
            4097,
            8192,
            8193,
            0.5,
            0.9,
            0.95,
            -1,
        ):
            if isinstance(value, int) and isinstance(probe, float):
                continue
            model = {**base, field: probe}
            if technique == "transformer" and field in ("d_model", "n_heads"):
                continue  # divisibility rules between the two fields are the config's alone
            try:
                card_schema.check_hyperparameters(technique, {"model": model})
                schema_ok = True
            except CapsuleError:
                schema_ok = False
            try:
                config.from_dict(model)
                config_ok = True
            except CapsuleError:
                config_ok = False
            assert schema_ok == config_ok, (technique, field, probe)


# -- 4. archive headers and members ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_a_huge_long_name_header_is_refused_before_it_is_read(reg, tmp_path, fmt):
    path = tmp_path / "long.tar.gz"
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for member, data in [
            ("imported/model.json", json.dumps(card_dict()).encode()),
            ("imported/weights.safetensors", WEIGHTS),
        ]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("imported/" + "n" * (MAX_HEADER_BYTES + 10) + ".txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert path.stat().st_size < 20_000  # the name compresses: a small file claiming a big header
    with pytest.raises(CapsuleError, match="extended header of .* bytes"):
        reg.import_archive(path)
    no_trace(reg)


def test_a_sparse_member_is_refused(reg, tmp_path):
    sparse = tarfile.TarInfo("imported/README.md")
    sparse.type = tarfile.GNUTYPE_SPARSE
    path = tmp_path / "sparse.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member, data in [
            ("imported/model.json", json.dumps(card_dict()).encode()),
            ("imported/weights.safetensors", WEIGHTS),
        ]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.addfile(sparse)
    path.write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(CapsuleError, match="not a plain file|not a valid"):
        reg.import_archive(path)
    no_trace(reg)


# -- 7. killed imports leave nothing that lasts --------------------------------------------------------


def test_stale_import_folders_are_swept_and_fresh_ones_kept(reg, tmp_path):
    reg.root.mkdir(parents=True)
    stale = reg.root / ".import-killed"
    stale.mkdir()
    (stale / "weights.safetensors").write_bytes(b"x" * 1000)
    os.utime(stale, (1, 1))
    fresh = reg.root / ".import-running"  # another process may be importing right now
    fresh.mkdir()
    for old in (reg.root / ".tmp-old", reg.root / ".trash-old"):
        old.mkdir()
        os.utime(old, (1, 1))
    reg.import_archive(archive_of(tmp_path, card_dict()))
    assert sorted(os.listdir(reg.root)) == [".import-running", "imported"]
