"""Readers datatrove lacks or that must survive bad input: WARC with bad records, plain text.

`LocatedWarcReader` is datatrove's `WarcReader` (same record handling, same metadata) that
never stops on a malformed record: the record's file and byte offset go to the task log, the
reader counts it (`malformed_record`) and carries on from the next record it can find. A
response that claims to be HTML but is not (binary bytes, no markup at all) is counted as
`malformed_html` and logged the same way. Offsets are those of the file on disk, as in a
Common Crawl index (`file.warc.gz:offset`).

`TextReader` reads `.txt` files, one document per file: datatrove has no plain-text reader.
"""

from __future__ import annotations

from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.readers.warc import WarcReader, process_record
from datatrove.utils.logging import logger

# Where a record can start again after a bad one: a gzip member (record-per-member .warc.gz,
# Common Crawl's layout) or a WARC header line (uncompressed .warc).
_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_MAGIC = b"WARC/1."
_SCAN_CHUNK = 1 << 20


class LocatedWarcReader(WarcReader):
    """datatrove's `WarcReader`, skipping (and locating) malformed records and HTML pages."""

    name = "🕷 Warc (located)"

    def read_file(self, filepath: str):
        from warcio.archiveiterator import WARCIterator

        with self.data_folder.open(filepath, "rb", compression=None) as f:
            gzipped = f.read(2) == _GZIP_MAGIC[:2]
            f.seek(0)
            start, index = 0, 0
            while start is not None:
                f.seek(start)
                records = WARCIterator(f)  # WARC only: no guessing ARC from a bad line
                good_end = start  # where the record after the last good one begins
                try:
                    for record in records:
                        with self.track_time():
                            document = self._document(record, records, filepath, index)
                        # warcio's offsets count from the start of the file
                        good_end = records.get_record_offset() + records.get_record_length()
                        index += 1
                        if document is not None:
                            yield document
                    start = None
                except Exception as e:  # noqa: BLE001 - a bad record must never end the run
                    # The bad record is the first one after the last good record (warcio's
                    # own offset may already be past it); carry on from the one after it.
                    magic = _GZIP_MAGIC if gzipped else _WARC_MAGIC
                    bad = _next_record_start(f, good_end, magic)
                    bad = good_end if bad is None else bad
                    self.stat_update("malformed_record")
                    logger.warning(f"{filepath}:{bad}: malformed WARC record skipped "
                                   f"({type(e).__name__}: {str(e)[:120]})")
                    start = _next_record_start(f, bad + 1, magic)

    def _document(self, record, records, filepath: str, index: int):
        try:
            data = process_record(record)
            error = None
        except Exception as e:  # noqa: BLE001 - e.g. a truncated payload
            data, error = None, e
        # warcio knows a record's offset once the record has been read to its end
        offset = records.get_record_offset()
        if error is not None:
            self.stat_update("malformed_record")
            logger.warning(f"{filepath}:{offset}: unreadable WARC record skipped ({error})")
            return None
        if data is None:
            if _claims_html(record):  # datatrove drops an undecodable page silently
                self.stat_update("malformed_html")
                logger.warning(f"{filepath}:{offset}: malformed HTML page skipped "
                               f"({record.rec_headers.get('WARC-Target-URI')}: undecodable)")
            return None  # otherwise not an HTML response: a request, metadata, an image...
        if "\x00" in data["text"] or "<" not in data["text"]:
            self.stat_update("malformed_html")
            logger.warning(f"{filepath}:{offset}: malformed HTML page skipped "
                           f"({data.get('url')}: binary or no markup)")
            return None
        data["offset"] = offset
        return self.get_document_from_dict(data, filepath, index)


def _claims_html(record) -> bool:
    mime = record.rec_headers.get("WARC-Identified-Payload-Type") or (
        record.http_headers.get_header("Content-Type", "") if record.http_headers else "")
    return record.rec_type == "response" and mime.split(";")[0].strip() in (
        "text/html", "application/xhtml+xml")


def _next_record_start(f, position: int, magic: bytes) -> int | None:
    """The byte offset of the next `magic` at or after `position`, or None at the end."""
    f.seek(position)
    carry = b""
    base = position
    while chunk := f.read(_SCAN_CHUNK):
        data = carry + chunk
        found = data.find(magic)
        if found >= 0:
            return base - len(carry) + found
        carry = data[-(len(magic) - 1):]
        base += len(chunk)
    return None


class TextReader(BaseDiskReader):
    """Plain `.txt` files, one document per file (datatrove reads JSONL, Parquet, WARC, CSV,
    but has no reader for bare text)."""

    name = "📄 Text"

    def read_file(self, filepath: str):
        with self.data_folder.open(filepath, "rt", encoding="utf-8", errors="replace") as f:
            with self.track_time():
                document = self.get_document_from_dict({"text": f.read()}, filepath, 0)
        if document is not None:
            yield document
