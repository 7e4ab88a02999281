"""Generate the CLIP tokenizer files shipped in ``ml_lib/diffusion/assets/clip_tokenizer``.

Source: the BPE table ``open_clip/bpe_simple_vocab_16e6.txt.gz`` inside the PyPI wheel of
open-clip-torch (MIT licence; the table is OpenAI CLIP's, also MIT). It is converted to the
``vocab.json`` + ``merges.txt`` pair that ``transformers.CLIPTokenizer`` reads; the result is the
tokenizer of Stable Diffusion 1.x (and, with ``pad_token="!"``, of SD 2.x and SDXL's second encoder).

Usage::

    python scripts/make_clip_tokenizer.py            # downloads the wheel with pip (PyPI only)
    python scripts/make_clip_tokenizer.py --wheel open_clip_torch-3.3.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/ml_lib/diffusion/assets/clip_tokenizer"
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
FULL_MERGES = 48_894  # 49,152 - 256 - 2 (open_clip) => 512 + 48,894 + 2 = 49,408 ids


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def build_vocab(merges: list[str]) -> dict[str, int]:
    """vocab.json for the given merges: bytes, bytes + </w>, each merge joined, then the specials."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def read_merges(wheel: Path, n_merges: int = FULL_MERGES) -> list[str]:
    """The first ``n_merges`` merges of the CLIP BPE table inside an open-clip-torch wheel."""
    with zipfile.ZipFile(wheel) as zf:
        lines = gzip.decompress(zf.read(BPE_MEMBER)).decode("utf-8").split("\n")
    return lines[1 : 1 + n_merges]


def write_tokenizer(out: Path, merges: list[str]) -> None:
    """Write vocab.json, merges.txt and the tokenizer configs of SD1.x's CLIP tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(merges)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "model_max_length": 77,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


def _download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), "open-clip-torch==3.3.0"],
        check=True,
    )
    return next(dest.glob("open_clip_torch-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wheel", type=Path, help="an open-clip-torch wheel (downloaded when omitted)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download_wheel(Path(tmp))
        merges = read_merges(wheel)
    write_tokenizer(args.out, merges)
    print(f"wrote {len(build_vocab(merges))} tokens to {args.out}")


if __name__ == "__main__":
    main()
