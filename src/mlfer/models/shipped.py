"""The model that ships with mlfer: SVML-RGCN on a ResNet18 trained on FER+ by mlfer's own
commands (its card, ``MODEL_CARD.md`` in its folder, says how; ``mlfer info`` prints it).

``mlfer.load()``, ``mlfer.Recognizer()`` and the commands without ``--checkpoint`` use it.
"""

from __future__ import annotations

from pathlib import Path

from mlfer.core.errors import MlferError

#: The packaged model folder (``config.yaml``, ``model.safetensors`` in float16,
#: ``thresholds.json``, ``framing.json``, ``MODEL_CARD.md``).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "resources" / "ferplus-svml-rgcn"
CARD_FILE = "MODEL_CARD.md"


def shipped_model_dir() -> Path:
    """The packaged model's folder; an installation without it is named."""
    if not (SHIPPED_DIR / "model.safetensors").is_file():
        raise MlferError(
            "the model that ships with mlfer is missing from this installation; reinstall mlfer, "
            "or pass a model folder (--checkpoint DIR)",
            path=SHIPPED_DIR,
        )
    return SHIPPED_DIR


def model_card() -> str:
    """The packaged model's card (Markdown)."""
    return (shipped_model_dir() / CARD_FILE).read_text(encoding="utf-8")
