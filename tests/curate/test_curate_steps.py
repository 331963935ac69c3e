"""The steps datatrove lacks: PII scrubbing, WARC records and pages that are broken, readers."""

import gzip
import io

import pytest
from loguru import logger

from llm_jax.curate.readers import LocatedWarcReader
from llm_jax.curate.steps import PIIScrubber

TEMPLATE = ("Write to {email} or {email2} about the 3.11.2 release of 2024-05-17; call {phone} "
            "or {phone2} between 9 and 17. The server is at {ip}, the office LAN at 192.168.0.1,"
            " and 1,000,000 users read version 10.0.19045 in room 4711.")
PII = dict(email="jane.doe@mail.example.org", email2="ops+alerts@sub.domain.co.uk",
           phone="+44 20 7946 0958", phone2="(555) 123-4567", ip="81.2.69.160")


def test_pii_replaced_and_nothing_else_changes():
    scrubber = PIIScrubber()
    scrubbed = scrubber.format(TEMPLATE.format(**PII))
    expected = TEMPLATE.format(email="email@example.com",
                               email2="firstname.lastname@example.org",
                               phone="<PHONE>", phone2="<PHONE>", ip="22.214.171.124")
    assert scrubbed == expected
    for value in PII.values():
        assert value not in scrubbed
    counts = {k: v.total for k, v in scrubber.stats.stats.items()}
    assert counts == {"pii_email": 2, "pii_ip": 1, "pii_phone": 2}
    clean = TEMPLATE.format(email="(none)", email2="(none)", phone="no one", phone2="no one",
                            ip="a private host")
    assert PIIScrubber().format(clean) == clean


def test_pii_kinds_switch_off():
    text = TEMPLATE.format(**PII)
    out = PIIScrubber(emails=False, ips=True, phones=False).format(text)
    assert PII["email"] in out and PII["phone"] in out and PII["ip"] not in out


def _warc(records: list[bytes | tuple[str, bytes]]) -> tuple[bytes, list[int]]:
    """A gzip-per-record WARC and each record's offset; bytes items are written raw (broken
    records)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out, offsets = io.BytesIO(), []
    writer = WARCWriter(out, gzip=True)
    for item in records:
        offsets.append(out.tell())
        if isinstance(item, bytes):
            out.write(gzip.compress(item))
            continue
        url, body = item
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], "HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                      http_headers=headers))
    return out.getvalue(), offsets


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING")
    yield lines
    logger.remove(sink)


def test_malformed_record_and_page_counted_skipped_and_located(tmp_path, log_lines):
    page = b"<html><body><p>%s</p></body></html>"
    data, offsets = _warc([
        ("https://a.example/1", page % b"first"),
        b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 999999\r\n\r\n<html>",
        b"XWARC/9 not a header at all\r\n\r\n",
        ("https://a.example/binary", bytes(range(256)) * 8),
        ("https://a.example/2", page % b"second")])
    (tmp_path / "crawl.warc.gz").write_bytes(data)
    reader = LocatedWarcReader(str(tmp_path))
    docs = list(reader.run())
    assert [d.metadata["url"] for d in docs] == ["https://a.example/1", "https://a.example/2"]
    assert "<p>second</p>" in docs[1].text
    assert [d.metadata["offset"] for d in docs] == [offsets[0], offsets[4]]
    stats = reader.stats.stats
    assert stats["malformed_record"].total == 2 and stats["malformed_html"].total == 1
    located = [line for line in log_lines if "crawl.warc.gz:" in line]
    assert [int(line.split("crawl.warc.gz:")[1].split(":")[0]) for line in located] == \
        offsets[1:4], log_lines
    assert "malformed HTML page" in located[2] and "a.example/binary" in located[2]


def test_page_the_extractor_cannot_parse_is_counted_and_located(log_lines):
    from datatrove.data import Document

    from llm_jax.curate.steps import Resiliparse

    def page(text: str, offset: int) -> Document:
        return Document(text=f"<html><body><p>{text}</p></body></html>", id=str(offset),
                        metadata={"file_path": "crawl.warc.gz", "offset": offset})

    extractor = Resiliparse()
    # a lone surrogate cannot be encoded for the C++ parser: the page fails, the run goes on
    docs = list(extractor.run([page("first page", 0), page("bad \ud800 page", 512),
                               page("last page", 1024)]))
    assert [d.text for d in docs] == ["first page", "last page"]
    assert extractor.stats.stats["clean_error"].total == 1
    assert any("crawl.warc.gz:512: HTML page not extracted" in line for line in log_lines)


def test_jsonl_parquet_and_text_inputs_are_read(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from configs import curation
    from llm_jax.curate.stages import _reader

    config = curation.curation_config()
    config.input.text_field = "content"
    (tmp_path / "a.jsonl").write_text(json.dumps({"content": "one", "url": "https://x/1"}) +
                                      "\n" + json.dumps({"content": "two"}) + "\n")
    pq.write_table(pa.table({"content": ["three", "four"], "lang": ["en", "en"]}),
                   tmp_path / "b.parquet")
    (tmp_path / "c.txt").write_text("five\nsix\n")
    got = {}
    for fmt, name in (("jsonl", "a.jsonl"), ("parquet", "b.parquet"), ("text", "c.txt")):
        got[fmt] = [(d.text, d.metadata.get("url"))
                    for d in _reader(config, str(tmp_path), name, fmt).run()]
    assert got == {"jsonl": [("one", "https://x/1"), ("two", None)],
                   "parquet": [("three", None), ("four", None)],
                   "text": [("five\nsix\n", None)]}
