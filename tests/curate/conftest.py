"""Hand-made documents for the curation tests, and one curation run over them (shared).

The prose is paragraphs of the suite's own corpus (Northanger Abbey), one paragraph a line;
the rest is written here: duplicates, a German page, spam, a blocked URL and personal data.
"""

import json
from pathlib import Path

import pytest

from configs import curation

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "northanger_abbey.txt"
GERMAN = ("Die Stadt liegt am Ufer eines breiten Flusses, und im Sommer sitzen die Leute bis "
          "spät in der Nacht in den Gärten. Am Morgen fahren die Fischer hinaus, während die "
          "Kinder zur Schule gehen und die Läden langsam öffnen. Niemand hat es hier eilig, "
          "denn das Leben folgt seit Jahrhunderten demselben ruhigen Rhythmus. Wer die Stadt "
          "besucht, sollte unbedingt das alte Rathaus und die kleine Kirche am Markt sehen. "
          "Im Winter wird es still, und nur wenige Reisende finden den Weg hierher.")
PII_LINE = ("Letters for the family may be sent to catherine.morland@fullerton.org.uk, or call "
            "+44 20 7946 0958 before noon; the parish server answers at 81.2.69.160.")


def paragraphs(n: int, start: int = 0) -> list[str]:
    """`n` documents of real prose, each three consecutive long paragraphs, one per line."""
    text = CORPUS.read_text(encoding="utf-8")
    paras = [" ".join(p.split()) for p in text.split("\n\n")]
    paras = [p for p in paras if 500 < len(p) < 2500]
    return ["\n".join(paras[start + 3 * i: start + 3 * i + 3]) for i in range(n)]


def config_for(input_path: Path, fmt: str = "jsonl"):
    config = curation.curation_config()
    config.input.paths = (str(input_path),)
    config.input.format = fmt
    config.url_filter.block_domains = ("spamsite.com",)
    config.minhash.num_buckets = 4  # fewer bucket tasks: faster; pairs above ~0.8 still meet
    config.minhash.hashes_per_bucket = 8
    config.wandb.mode = "disabled"
    return config


@pytest.fixture(scope="session")
def prose() -> list[str]:
    return paragraphs(6)


@pytest.fixture(scope="session")
def curated(tmp_path_factory, prose):
    """One local curation run over hand-made JSONL documents: (result, input docs by id)."""
    from llm_jax.curate.run import run_curation

    root = tmp_path_factory.mktemp("curate")
    a, b, c, d, e, f = prose
    b_words = b.split(" ")
    b_words[40] = "extraordinary"
    near_b = " ".join(b_words) + " She said no more about it that evening."
    docs = {
        "a": (a, "https://books.example/a"), "b": (b, "https://books.example/b"),
        "c": (c + "\n" + PII_LINE, "https://books.example/c"),
        "d": (d, "https://books.example/d"), "e": (e, "https://books.example/e"),
        "a_copy": (a, "https://mirror.example/a"), "b_near": (near_b, "https://mirror.example/b"),
        "german": (GERMAN + "\n" + GERMAN.replace("Stadt", "Gemeinde"), "https://de.example/"),
        "spam": ("Click here to buy the cheapest watches in town at the best price today.",
                 "https://shop.example/"),
        "blocked": (f, "https://www.spamsite.com/page"),
    }
    data = root / "input" / "docs.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps({"id": k, "text": t, "url": u}) + "\n"
                            for k, (t, u) in docs.items()))
    result = run_curation(config_for(data.parent), root / "run")
    return result, docs
