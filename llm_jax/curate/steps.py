"""The few curation steps datatrove does not ship in a form that runs offline; each says why.

- `OfflineURLFilter`: datatrove's `URLFilter`, with the public-suffix list bundled in
  `tldextract` (its default fetches the list from the network on first use) and documents
  without a URL (JSONL/Parquet/text input) passed through instead of failing an assert.
- `LangIdFilter`: datatrove's `LanguageFilter` downloads a fastText model at run time; this
  one wraps `py3langid`, whose model ships inside its wheel.
- `Resiliparse`: datatrove has only the trafilatura (and readability) extractors.
- `LocatedTrafilatura`: datatrove's `Trafilatura`, whose errors name the page's file and offset.
- `PIIScrubber`: datatrove's `PIIFormatter` (e-mail, IP) plus phone numbers, which it lacks.
"""

from __future__ import annotations

import re

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.extractors.base import BaseExtractor, ExtractorSandbox
from datatrove.pipeline.extractors.trafilatura import Trafilatura
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.url_filter import URLFilter
from datatrove.pipeline.formatters.pii import PIIFormatter, PIIReplacer
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.logging import logger
from datatrove.utils.typeshelper import StatHints

from llm_jax.curate.language_model import language_identifier


class OfflineURLFilter(URLFilter):
    """`URLFilter` that never touches the network and keeps documents that have no URL."""

    def __init__(self, **kwargs):
        super().__init__(use_integrated_lists=False, **kwargs)
        from tldextract import TLDExtract

        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        if not document.metadata.get("url"):
            return True
        return super().filter(document)


class LangIdFilter(BaseFilter):
    """Keep documents whose language (py3langid, probabilities normalised over its 97
    languages) is one of `languages` with probability at least `threshold`.

    Written because datatrove's `LanguageFilter` fetches a fastText model from the network
    on first use; py3langid's model is inside its wheel, so nothing is downloaded.
    py3langid walks its automaton over the text byte by byte in Python (~0.7 s a MB), so
    only the first `max_chars` characters are classified (0 = all of them).
    """

    name = "🌍 Language ID (py3langid)"

    def __init__(self, languages: tuple[str, ...] = ("en",), threshold: float = 0.65,
                 max_chars: int = 0, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        self.languages = tuple(languages)
        self.threshold = threshold
        self.max_chars = max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text[:self.max_chars] if self.max_chars else doc.text
        language, score = language_identifier().classify(text)
        doc.metadata["language"], doc.metadata["language_score"] = language, round(score, 4)
        if language not in self.languages:
            return False, f"language_{language}"
        if score < self.threshold:
            return False, "language_score"
        return True


class _LocatedExtractor(BaseExtractor):
    """An extractor whose failures are counted and logged with the page's file and offset.

    `sandboxed` extractors run in datatrove's sandbox process (a per-page timeout, at the
    cost of a pipe round trip per page); fast C extractors run in-process.
    """

    sandboxed = True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        sandbox = ExtractorSandbox(timeout=self.timeout) if self.sandboxed else None
        try:
            for doc in data:
                self.stat_update(StatHints.total)
                with self.track_time():
                    try:
                        doc.text = (sandbox.process_document(doc.text, self.extract) if sandbox
                                    else self.extract(doc.text)) or ""
                    except Exception as e:  # noqa: BLE001 - one bad page must not end the run
                        self.stat_update("timeout" if isinstance(e, TimeoutError)
                                         else "clean_error")
                        meta = doc.metadata
                        where = f"{meta.get('file_path', '?')}:{meta.get('offset', '?')}"
                        logger.warning(f"{where}: HTML page not extracted, skipped "
                                       f"({type(e).__name__}: {str(e)[:120]})")
                        continue
                if doc.text:
                    self.stat_update(StatHints.forwarded)
                    self.update_doc_stats(doc)
                    yield doc
                else:
                    self.stat_update(StatHints.dropped)
        finally:
            if sandbox is not None:
                sandbox.__exit__(None, None, None)


class LocatedTrafilatura(_LocatedExtractor, Trafilatura):
    """datatrove's trafilatura extractor (precision-favouring, as FineWeb)."""


class Resiliparse(_LocatedExtractor):
    """Main-content text with resiliparse (a C++ HTML parser, ~10-50x faster than
    trafilatura); datatrove has no resiliparse extractor."""

    name = "⛏ Resiliparse"
    sandboxed = False

    def __init__(self, timeout: float = 1.0):
        super().__init__(timeout)

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        return extract_plain_text(HTMLTree.parse(text), main_content=True, alt_texts=False,
                                  links=False, comments=False)


# Phone numbers: an optional +country code, then groups of digits separated by spaces, dots,
# dashes or a parenthesised area code, 9 to 15 digits in all (E.164's maximum). Runs of bare
# digits (years, version numbers, counts) do not match: a separator is required.
PHONE_PATTERN = (r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])"
                 r"\d{2,4}[ .-]\d{2,5}(?:[ .-]\d{2,4})?(?![\w-])")
_DIGITS = re.compile(r"\d")


_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _looks_like_phone(text: str) -> bool:
    # an IPv4 address (or the IP scrubber's placeholder) is not a phone number
    return 9 <= len(_DIGITS.findall(text)) <= 15 and not _IPV4.fullmatch(text)


class PIIScrubber(PIIFormatter):
    """datatrove's `PIIFormatter` (e-mail and public IP addresses replaced by placeholders)
    plus phone numbers, which it does not handle."""

    name = "📞 PII (e-mail, IP, phone)"

    def __init__(self, emails: bool = True, ips: bool = True, phones: bool = True,
                 phone_replacement: str = "<PHONE>"):
        super().__init__(remove_emails=emails, remove_ips=ips)
        self.remove_phones = phones
        self.phone_replacer = PIIReplacer(PHONE_PATTERN, phone_replacement,
                                          validator=_looks_like_phone)

    def format(self, text: str) -> str:
        before = self._placeholders(text)
        text = super().format(text)
        if self.remove_phones:
            text = self.phone_replacer.replace(text)
        # what was replaced, for the report: the placeholders gained, by kind
        after = self._placeholders(text)
        for kind, old, new in zip(("pii_email", "pii_ip", "pii_phone"), before, after):
            if new > old:
                self.stat_update(kind, value=new - old)
        return text

    def _placeholders(self, text: str) -> tuple[int, int, int]:
        return (sum(text.count(r) for r in self.emails_replacer.replacements),
                sum(text.count(r) for r in self.ip_replacer.replacements),
                sum(text.count(r) for r in self.phone_replacer.replacements))
