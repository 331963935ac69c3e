"""A WARC of real web pages that nobody here wrote: Debian's HTML documentation, with the
faults a crawl has injected into it.

    python -m llm_jax.curate.demo_warc OUT_DIR [--package python3-doc] [--pages 400]

The pages come from Debian packages fetched with `apt-get download` and unpacked with
`dpkg-deb -x` (no installation, no root where apt's package lists exist) into
`~/.cache/llm_jax/curate` (or `$LLM_JAX_CACHE/curate`): the Python documentation
(`python3-doc`, whose HTML lives in the versioned package it depends on) in English, and the
German and French Debian Reference for foreign pages. Given the same packages and seed, the
WARC is the same byte for byte (fixed record ids and dates). Injected, by a seeded draw:

- exact duplicates (the same page under a mirror URL) and near duplicates (a changed title
  and one changed sentence);
- German and French pages; pages on a blocked domain (`ads.example.com`);
- e-mail addresses, phone numbers and IP addresses in some English pages;
- one malformed WARC record and one "HTML" response that is binary bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import logging
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llm_jax.data.corpus import cache_root
from llm_jax.errors import DataError

log = logging.getLogger(__name__)

FOREIGN_PACKAGES = ("debian-reference-de", "debian-reference-fr")
BLOCKED_DOMAIN = "ads.example.com"
_DATE = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class Injected:
    """How many of each fault the WARC holds (the curation run should remove them)."""

    pages: int
    exact_duplicates: int
    near_duplicates: int
    foreign: int
    blocked: int
    with_pii: int
    malformed_records: int = 1
    malformed_html: int = 1


def fetch_package(package: str, cache: Path | None = None) -> Path:
    """Unpack `package` (or, for a metapackage, its `*-doc` dependencies) under the cache;
    returns the unpacked root."""
    root = (cache or cache_root() / "curate") / package
    if (root / ".complete").exists():
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataError("the demo WARC needs apt-get and dpkg-deb (Debian/Ubuntu); curate your "
                        "own pages with --config.input.paths='(\"/data/crawl/\",)'")
    with tempfile.TemporaryDirectory() as tmp:
        names = [package] + _doc_dependencies(package)
        run = subprocess.run(["apt-get", "download", *names], cwd=tmp, capture_output=True,
                             text=True, timeout=600)
        if run.returncode != 0:
            detail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"apt-get download {' '.join(names)} failed: {detail}")
        root.mkdir(parents=True, exist_ok=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=600)
    (root / ".complete").write_text("")
    return root


def _doc_dependencies(package: str) -> list[str]:
    run = subprocess.run(["apt-cache", "depends", package], capture_output=True, text=True,
                         timeout=60)
    deps = re.findall(r"^\s*Depends:\s*(\S+)", run.stdout, flags=re.M)
    return [d for d in deps if d.endswith("-doc")]


def html_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if p.is_file())


def _response(writer, url: str, body: bytes, content_type: str = "text/html; charset=utf-8"):
    from warcio.statusandheaders import StatusAndHeaders

    headers = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
    record_id = f"<urn:uuid:{hashlib.md5(url.encode()).hexdigest()}>"
    record = writer.create_warc_record(
        url, "response", payload=io.BytesIO(body), http_headers=headers,
        warc_headers_dict={"WARC-Record-ID": record_id, "WARC-Date": _DATE,
                           "WARC-Identified-Payload-Type": "text/html"})
    writer.write_record(record)


def _near_duplicate(html: str, rng: random.Random) -> str:
    """A re-rendered copy: title changed, one paragraph dropped, one sentence added."""
    html = re.sub(r"<title>(.*?)</title>", r"<title>\1 (mirror)</title>", html, count=1,
                  flags=re.S)
    paragraphs = list(re.finditer(r"<p>.*?</p>", html, flags=re.S))
    if len(paragraphs) > 3:
        gone = paragraphs[rng.randrange(1, len(paragraphs))]
        html = html[:gone.start()] + html[gone.end():]
    return html.replace("</body>", f"<p>This copy was last checked on day {rng.randint(1, 28)}"
                        " of the month.</p></body>", 1)


def _with_pii(html: str, i: int) -> str:
    """The page with a contact paragraph after its first paragraph, inside the main text
    (an extractor drops what follows the article as boilerplate)."""
    contact = (f"<p>Questions about this page go to maintainer.{i}@lists.example.net or call "
               f"+44 20 7946 0{i % 1000:03d}; the mirror runs at 93.184.216.{i % 250 + 1}.</p>")
    main = max(html.find('role="main"'), 0)  # Sphinx's article; before it: the side bar
    end = html.find("</p>", main)
    return html if end < 0 else html[:end + 4] + contact + html[end + 4:]


def build_demo_warc(out_dir: Path, package: str = "python3-doc", pages: int = 400,
                    seed: int = 0, shards: int = 2, cache: Path | None = None) -> Injected:
    """Write the demo WARC (gzip per record) as `shards` files `out_dir/demo-NN.warc.gz`
    (records dealt round-robin, so each curation task gets one); returns what was injected."""
    from warcio.warcwriter import WARCWriter

    english = html_files(fetch_package(package, cache))
    if len(english) < 10:
        raise DataError(f"Debian package {package}: only {len(english)} HTML pages found")
    foreign = [p for name in FOREIGN_PACKAGES for p in html_files(fetch_package(name, cache))]
    rng = random.Random(seed)
    chosen = rng.sample(english, min(pages, len(english)))
    n = len(chosen)
    exact, near = rng.sample(chosen, n // 20), rng.sample(chosen, n // 20)
    pii = set(rng.sample(range(n), n // 10))
    foreign = rng.sample(foreign, min(len(foreign), max(2, n // 40)))
    blocked = rng.sample(chosen, max(1, n // 80))

    def url(path: Path, host: str = "docs.python.org") -> str:
        # the page's path below the package's html/ folder, as the site would serve it
        parts = path.parts
        below = parts[parts.index("html") + 1:] if "html" in parts else parts[-1:]
        return f"https://{host}/{'/'.join(below)}"

    def text(path: Path) -> str:
        return path.read_text(encoding="utf-8", errors="replace")

    records = [(url(p), (_with_pii(text(p), i) if i in pii else text(p)).encode())
               for i, p in enumerate(chosen)]
    records += [(url(p, "mirror.example.org"), text(p).encode()) for p in exact]
    records += [(url(p, "copy.example.net"), _near_duplicate(text(p), rng).encode())
                for p in near]
    records += [(url(p, "www.debian.org"), text(p).encode()) for p in foreign]
    records += [(url(p, BLOCKED_DOMAIN), text(p).encode()) for p in blocked]
    rng.shuffle(records)
    binary = bytes(rng.randrange(256) for _ in range(2048)).replace(b"<", b" ")
    records.insert(len(records) // 2, ("https://broken.example.org/page.html", binary))

    out_dir.mkdir(parents=True, exist_ok=True)
    buffers = [io.BytesIO() for _ in range(shards)]
    writers = [WARCWriter(b, gzip=True) for b in buffers]
    bad_at = len(records) // 3
    for i, (address, body) in enumerate(records):
        if i == bad_at:  # a gzip member whose WARC header is garbage
            buffers[i % shards].write(
                gzip.compress(b"WARX/0.0 this is not a WARC header\r\n\r\n", mtime=0))
        _response(writers[i % shards], address, body)
    for n_shard, buffer in enumerate(buffers):
        (out_dir / f"demo-{n_shard:02d}.warc.gz").write_bytes(buffer.getvalue())
    injected = Injected(pages=n, exact_duplicates=len(exact), near_duplicates=len(near),
                        foreign=len(foreign), blocked=len(blocked), with_pii=len(pii))
    log.info("wrote %s: %d records (%s)", out_dir, len(records) + 1, injected)
    return injected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--package", default="python3-doc")
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(build_demo_warc(args.out_dir, args.package, args.pages, args.seed, args.shards))
    except DataError as e:
        print(f"demo_warc: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
