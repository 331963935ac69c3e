"""The default corpus: R lazy-load decoding (on bytes made here) and, where apt works, a fetch."""

import gzip
import hashlib
import shutil
import struct
import subprocess
import zlib

import pytest

from llm_jax.data.rdata import read_lazyload, unserialize


def _xdr_strings(values):
    """R's XDR serialization (version 3) of a character vector, built by hand."""
    out = b"X\n" + struct.pack(">iii", 3, 0x040300, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
    out += struct.pack(">ii", 16, len(values))
    for v in values:
        if v is None:
            out += struct.pack(">ii", 9, -1)
        else:
            b = v.encode()
            out += struct.pack(">ii", 9 | (1 << 15), len(b)) + b  # CHARSXP, UTF-8 flag
    return out


def test_unserialize_character_vector():
    assert unserialize(_xdr_strings(["EMMA", "", None, "café"])) == ["EMMA", "", None, "café"]


def test_read_lazyload_round_trip(tmp_path):
    blob = _xdr_strings(["line one", "line two"])
    record = struct.pack(">i", len(blob)) + zlib.compress(blob)
    (tmp_path / "Rdata.rdb").write_bytes(record)
    # index: list(variables = list(novel = c(0, len)))
    idx = b"X\n" + struct.pack(">iii", 2, 0x040300, 0x020300)
    idx += struct.pack(">i", 2 | (1 << 10))  # pairlist with tag
    idx += struct.pack(">i", 1) + struct.pack(">ii", 9, 9) + b"variables"  # SYMSXP tag
    idx += struct.pack(">i", 2 | (1 << 10))
    idx += struct.pack(">i", 1) + struct.pack(">ii", 9, 5) + b"novel"
    idx += struct.pack(">ii", 13, 2) + struct.pack(">ii", 0, len(record))  # INTSXP c(0, len)
    idx += struct.pack(">i", 254)  # end of inner pairlist
    idx += struct.pack(">i", 254)  # end of outer pairlist
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(idx))
    assert read_lazyload(tmp_path / "Rdata.rdx", tmp_path / "Rdata.rdb") == {
        "novel": ["line one", "line two"]}


# sha256 of the texts the Debian packages give (r-cran-janeaustenr 1.0.0-1, bible-kjv 4.38)
EMMA_SHA256 = "7c67b5985c6d0de1efaeb5d342d52cb82c38083c40e2295129e30e87ee690ebe"
KJV_SHA256 = "82fa5f3788c6a9a010fb128a0f0bf588984b5888a82058520620eded59b033ea"


def test_real_fetch_gives_the_known_texts(tmp_path, test_corpus):
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get")
    probe = subprocess.run(["apt-get", "download", "--print-uris", "r-cran-janeaustenr"],
                           timeout=600, capture_output=True, text=True)
    if probe.returncode != 0 or "r-cran-janeaustenr" not in probe.stdout:
        pytest.skip("Debian package index not available")
    from llm_jax.data.corpus import default_corpus

    train, val = default_corpus(tmp_path / "corpora")
    assert [p.name for p in val] == ["persuasion.txt"]
    emma = (tmp_path / "corpora/austen/emma.txt").read_bytes()
    kjv = (tmp_path / "corpora/kjv.txt").read_bytes()
    assert hashlib.sha256(emma).hexdigest() == EMMA_SHA256
    assert hashlib.sha256(kjv).hexdigest() == KJV_SHA256
    # the excerpts the tests carry are the same texts' openings
    assert emma.startswith((test_corpus / "emma.txt").read_bytes())
    assert kjv.startswith((test_corpus / "kjv.txt").read_bytes())
    assert len(train) == 6
