"""A GAN's model card: ``README.md`` with its plots and history, written from the card's numbers.

:func:`write_card_files` is what :func:`~capsule_lib.techniques.gan.train.train_gan` ends with;
the card can be written again from what it stores (``bench/gan_research.py`` does, after adding a
cross-validation).  Stored research numbers -- piece-bootstrap intervals, real music on the bar,
cross-validation -- are put into words by :mod:`~capsule_lib.techniques.gan.views`.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from ...atomic import atomic_write_bytes, atomic_write_text
from .._common import provenance_lines
from .views import (
    cross_validation_lines,
    failure_intervals,
    metrics_comparison_table,
    plot_gan_loss,
    plot_metric_curves,
    real_music_lines,
)

__all__ = ["write_card_files", "CROSS_VALIDATE"]

#: The command that cross-validates GANs and records the result in the fold-0 card.
CROSS_VALIDATE = "python bench/gan_research.py cross-validate"


def _voice_leading_text(hp: dict) -> str:
    """The card's sentence on joint decoding (empty for a model whose tracks are drawn on their own)."""
    vl = hp.get("voice_leading")
    if not vl:
        return "  Each track is drawn on its own."
    ranges = ", ".join(
        f"{name} {r[0]}-{r[1]}" for name, r in zip(hp["genre"]["tracks"][1:], hp.get("part_ranges") or []) if r
    )
    return (
        "  The tracks are drawn *jointly* (capsule_lib.techniques.gan.voicing): the lowest first, then from the "
        "top down, each given the melody and the tracks already drawn, with its probabilities multiplied by "
        "exp(-weight) for a parallel fifth or octave with another voice, a clash (1, 11 or 13 semitones), a crossing "
        "and a note out of its range -- weights "
        + ", ".join(f"{k} {v:g}" for k, v in vl.items())
        + " nats"
        + (f"; ranges (MIDI) {ranges}" if ranges else "")
        + "."
    )


def _interval_lines(test: dict) -> list[str]:
    """Card lines: for each failed check, the ground truth's piece-bootstrap interval."""
    rows = failure_intervals(test)
    if not rows:
        return []
    iv = test["ground_truth_interval"]
    return [
        "",
        f"How much those ground truths depend on which pieces were held out ({iv['level']:.0%} interval of "
        f"the mean when the {test['n_pieces']} test pieces are resampled with replacement, {iv['draws']} "
        "draws):",
        "",
    ] + [f"- {r}" for r in rows]


def _cross_validation_lines(card) -> list[str]:
    """The card's cross-validation section (empty until ``bench/gan_research.py`` records one)."""
    cv = (card.metrics or {}).get("cross_validation")
    if not cv:
        return []
    command = card.hyperparameters.get("provenance", {}).get("command", "")
    others = [f for f in cv["folds"] if f != 0]
    names = [cv["per_fold"][str(f)]["model"] for f in sorted(cv["folds"])]
    rows = cross_validation_lines(cv)
    train = (
        f"`{command.replace(' --name ' + card.name, ' --fold K --name ' + card.name + '-fold-K')}` for each K, then "
        if command.startswith("capsule train") and f" --name {card.name}" in command
        else ""
    )
    alone = (
        "  (Measured before the parts were drawn jointly: every fold's parts were drawn alone, as this model's were "
        "then -- its test evaluation of that time is kept in the card as `test_parts_drawn_alone`; the folds have "
        "not been re-run with joint decoding.)"
        if cv.get("decoder") == "parts drawn alone"
        else ""
    )
    return (
        [
            "",
            "## Cross-validation",
            "",
            "One test split of a few pieces says as much about which pieces were held out as about the model."
            + alone
            + "  "
            "So the training command above was also run with `--fold K` for "
            f"K = {', '.join(str(f) for f in others)} -- fold K holds out bucket K of the split rule and validates "
            "on bucket K + 1; fold 0 is this model -- and each of those models accompanied the melodies of its own "
            "held-out pieces, none of which it trained on.  Pooled, the held-out melodies are "
            f"{'every piece of the data set' if len(cv['folds']) == 10 else 'the pieces of those folds'} and the "
            "ground truth is their real accompaniment:",
            "",
            metrics_comparison_table(cv),
            "",
            rows[0] + ".",
            "",
        ]
        + [f"- {r}" for r in rows[1:]]
        + ["", f"Reproduce: {train}`{CROSS_VALIDATE} {' '.join(names)} --record`."]
    )


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x)) else "n/a"


def _retuned_line(retuned: dict, m: dict) -> str:
    """The provenance line of a GAN whose decoder was retuned after training (same weights)."""
    before = retuned["parts_drawn_alone"]
    old_test = (m.get("test_parts_drawn_alone") or {}).get("quality_bar", {})
    return (
        f"- Decoder retuned for the joint draw ({retuned['finished']}): `{retuned['by']}` -- the same "
        "weights; the refit training now ends with, on the same validation melodies.  Settings of the "
        f"parts drawn alone: switch penalties {before['switch_penalty']}, rest weights "
        f"{before['rest_weight']}, chord thresholds {before['chord_threshold']}"
        + (
            f"; their test evaluation (`test_parts_drawn_alone`): quality bar "
            f"{'passed' if old_test.get('passed') else 'not passed (' + '; '.join(old_test.get('failures', [])) + ')'}"
            if old_test
            else ""
        )
        + "."
    )


def write_card_files(card, history: list, summary: dict, sample_midi: Path | None = None) -> None:
    """``README.md``, ``history.json``, ``loss.png``, ``metrics.png`` (and ``sample.mid``) in the card's folder."""
    folder: Path = card.path
    atomic_write_text(folder / "history.json", json.dumps(history, indent=1) + "\n")
    hp, m = card.hyperparameters, card.metrics
    plots = []
    try:
        from ...plot import subplots  # matplotlib: a slim install may lack it

        loss_fig, ax = subplots(figsize=(8, 3.5), standalone=True)
        plot_gan_loss(history, ax=ax)
        for fname, fig in (
            ("loss.png", loss_fig),
            ("metrics.png", plot_metric_curves(history, hp["ground_truth"], hp["genre"]["tracks"], standalone=True)),
        ):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
            atomic_write_bytes(folder / fname, buf.getvalue())
            plots.append(fname)
    except ImportError:
        pass
    if sample_midi is not None and sample_midi.is_file():
        atomic_write_bytes(folder / "sample.mid", sample_midi.read_bytes())
    tr = hp["training"]
    lines = [
        f"# {card.name} -- {card.algorithm} accompaniment GAN",
        "",
        card.description,
        "",
        "## Data and split",
        "",
        f"- {card.dataset}; {summary['skipped']} unusable and {summary['duplicates']} duplicate pieces dropped.",
        f"- Tracks: {', '.join(hp['genre']['tracks'])} (the first is the melody the generator is given; "
        f"default instruments, General MIDI programs {hp['genre']['programs']}).",
        f"- Split rule: {summary['split_rule']}.",
        f"- Samples: {hp['data']['samples']}; {hp['data']['transposition']}; pitches MIDI "
        f"{summary['pitch_range'][0]}-{summary['pitch_range'][1]}, {summary['sample']}.",
        "- Decoding: each track's line is *sampled* from the generator's note probabilities (forward filtering, "
        "backward sampling in a hidden Markov model of notes and rests whose line changes state with a calibrated "
        "probability per step), plus, where the track's polyphony (per accompaniment track: "
        f"{hp['polyphony'][1:]}, the 99th percentile of simultaneous notes in the training data) is above 1, "
        "further notes above a calibrated threshold.  The decoder's three settings are hyperparameters of the "
        "sampling, tuned as hyperparameters are: after each epoch, on the held-out validation melodies, so that "
        "the accompaniment sampled for them has the statistics of their *real* accompaniment, each computed "
        "exactly as the metric in the test table (per 4-bar sample, then averaged): the change penalty to its "
        f"pitch classes per bar {[round(x, 2) for x in hp.get('pitch_classes_target', [])]} (penalties "
        f"{[round(x, 3) for x in hp.get('switch_penalty', [])]} nats), a weight on resting to its empty bar rate "
        f"{[round(x, 3) for x in hp.get('empty_bar_target', [])]} (weights {hp.get('rest_weight')}), the chord "
        f"threshold to its polyphonic rate {[round(x, 3) for x in hp.get('chord_share', [])]} "
        f"(thresholds {hp.get('chord_threshold')}).  So on validation music those three metrics match by design; "
        "the test table shows how well that carries over to the held-out test pieces, which training never "
        "reads.  Which pitches are played, hence the in-scale ratio and the harmony, come from the "
        "generator." + _voice_leading_text(hp),
        "",
        "## Hyperparameters",
        "",
        f"- Network: {json.dumps(hp['model'])}; parameters {json.dumps(m.get('parameters', {}))}.",
        f"- Training: {tr['epochs']} epochs, learning rate {tr['lr']:g}, update ratio {tr['update_ratio']} "
        f"(critic updates per generator update), batch {tr['batch_size']}, seed {tr['seed']}, {tr['optimizer']}, "
        f"{tr['loss']}.",
        f"- Wall-clock training time: {card.training_time_s:.0f} s ({card.training_time_s / 60:.1f} min).",
        "",
        "## Results",
        "",
        f"- Last epoch: critic loss {_fmt(m.get('critic_loss'))}, generator loss {_fmt(m.get('generator_loss'))}, "
        f"Wasserstein estimate {_fmt(m.get('wasserstein'))}.",
    ]
    test = m.get("test")
    if test:
        lines += [
            "",
            f"Test split ({test['n_samples']} 4-bar samples of {test['n_pieces']} held-out pieces; "
            "generated = accompaniment written for the real melody, ground truth = the real accompaniment):",
            "",
            metrics_comparison_table(test),
            "",
            f"Quality bar (each accompaniment track: empty bar rate, pitch classes used, qualified note rate and "
            f"polyphonic rate within 20 % of the ground truth -- or 0.01 where the ground truth is below 0.05 -- "
            f"and in-scale ratio within 5 points): **{'passed' if test['quality_bar']['passed'] else 'not passed'}**"
            + ("" if test["quality_bar"]["passed"] else f" ({'; '.join(test['quality_bar']['failures'][:6])})")
            + ".",
        ]
        lines += _interval_lines(test)
        ref = real_music_lines(test)
        if ref:
            lines += [
                "",
                f"The same bar applied to real music -- the real accompaniment of other pieces of the data set "
                f"in place of the generated one, against the same {test['n_pieces']} test pieces (a check "
                "that the composers' own music fails measures which pieces were held out, not the model):",
                "",
            ] + [f"- {r}" for r in ref]
    lines += _cross_validation_lines(card)
    for fname, caption in (
        ("loss.png", "generator and critic loss"),
        ("metrics.png", "metrics per epoch vs ground truth"),
    ):
        if fname in plots:
            lines += ["", f"![{caption}]({fname})"]
    if sample_midi is not None:
        lines += ["", "`sample.mid`: the last epoch's first validation sample (melody + accompaniment)."]
    retuned = hp.get("decoder_retuned")
    lines += provenance_lines(
        card,
        *([_retuned_line(retuned, m)] if retuned else []),
        f"- `capsule evaluate {card.name} --json` reproduces the test table.",
        "- A sample model is that folder (`$CAPSULE_HOME/models/NAME/`) copied to `data/models/NAME/`.",
    )
    atomic_write_text(folder / "README.md", "\n".join(lines) + "\n")
