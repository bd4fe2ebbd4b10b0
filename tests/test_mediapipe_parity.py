"""benchmarks/mediapipe_parity.py on a tiny exported model and real SST-2 dev sentences."""

import importlib.util
import pathlib
import sys

import pytest
from runtime_export import export_tiny_model
from tiny_models import spread_weights, tiny_classifier, tiny_tokenizer

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "mediapipe_parity.py"
SENTENCES = 20


def load_script():
    spec = importlib.util.spec_from_file_location("mediapipe_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclass looks its own module up in sys.modules.
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


def test_strip_accents_matches_the_samples():
    script = load_script()
    assert script.strip_accents("Amélie, MAELSTRÖM, naïveté") == "Amelie, MAELSTROM, naivete"
    assert script.strip_accents("plain text") == "plain text"


def test_bad_data_line_names_file_and_line(tmp_path):
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\na fine film\t1\nno label here\n")
    with pytest.raises(ValueError, match=r"dev\.tsv, line 3"):
        load_script().read_labeled_tsv(str(data))


@pytest.mark.large
def test_mediapipe_and_runtime_agree_on_sst2_dev(sst2_dir, tmp_path, capsys):
    data = sst2_dir / "dev.tsv"
    if not data.exists():
        pytest.skip(f"SST-2 dev set not found at {data}")
    # std 1.0, seed 3: on these 20 sentences the tiny model picks each class several times.
    model = spread_weights(tiny_classifier(num_classes=2, seed=3), std=1.0, seed=3)
    path = export_tiny_model(model, tiny_tokenizer(), str(tmp_path / "export"),
                             sequence_length=32)

    figures = load_script().main(["--model", str(path), "--data", str(data),
                                  "--limit", str(SENTENCES)])

    printed = capsys.readouterr().out
    assert f"same top-1 label:          {SENTENCES} / {SENTENCES}" in printed
    for name, parity in figures.items():
        assert parity.sentences == SENTENCES, name
        assert parity.same_top1 == SENTENCES, name
        assert parity.max_abs_diff <= 1e-4, name
        assert not parity.disagreements, name
    # The comparison is not between near-constant outputs: both classes win somewhere.
    scores = figures["as_is"].runtime_scores
    assert scores.max() - scores.min() > 0.2
    assert set(scores.argmax(axis=1)) == {0, 1}
