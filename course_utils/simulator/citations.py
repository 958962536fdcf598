"""Documents in a request: the answer draws on them, and cites them when `citations.enabled` is set.

Plain-text documents only (`source.type == "text"`): a citation is a `char_location` span that is an exact
substring of the document, as the real API's are. PDF and custom-content documents are read for their presence
but not cited (see docs/simulator.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"[a-z][a-z']+")
_STOP = {
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "and",
    "or",
    "is",
    "are",
    "what",
    "does",
    "do",
    "say",
    "says",
    "about",
    "document",
    "this",
    "that",
    "it",
    "for",
    "on",
    "with",
    "according",
    "me",
    "tell",
    "please",
    "which",
    "how",
}


@dataclass(frozen=True)
class Document:
    """One document block of the request, numbered as the API numbers them (order of appearance)."""

    index: int
    title: str | None
    text: str
    cite: bool


@dataclass(frozen=True)
class Segment:
    """A piece of the answer: its text, and the citation it carries (None for connecting text)."""

    text: str
    citation: dict[str, Any] | None = None


def documents(messages: list[dict[str, Any]]) -> list[Document]:
    """Every plain-text document block in the conversation's user turns."""
    found: list[Document] = []
    index = 0
    for message in messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "document":
                continue
            source = block.get("source") or {}
            text = source.get("data") if source.get("type") == "text" else None
            if isinstance(text, str):
                cite = bool((block.get("citations") or {}).get("enabled"))
                found.append(Document(index, block.get("title"), text, cite))
            index += 1  # every document counts toward document_index, cited or not
    return found


def _spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        if end - start > 3:
            spans.append((start, end))
    return spans


def answer_from(docs: list[Document], question: str, limit: int = 2) -> list[Segment]:
    """An answer made of the document sentences that best match the question, cited where citations are on."""
    asked = set(_WORD.findall(question.lower())) - _STOP
    scored: list[tuple[int, int, Document, tuple[int, int]]] = []
    for doc in docs:
        for order, (start, end) in enumerate(_spans(doc.text)):
            words = set(_WORD.findall(doc.text[start:end].lower()))
            scored.append((-len(words & asked), order, doc, (start, end)))
    if not scored:
        return []
    scored.sort(key=lambda item: (item[0], item[2].index, item[1]))
    relevant = [item for item in scored if item[0] < 0][:limit] or scored[:1]
    chosen = sorted(relevant, key=lambda item: (item[2].index, item[3][0]))
    name = chosen[0][2].title
    segments = [Segment(f"According to {'“' + name + '”' if name else 'the document'}: ")]
    for i, (_, _, doc, (start, end)) in enumerate(chosen):
        claim = doc.text[start:end].strip()
        citation = (
            {
                "type": "char_location",
                "cited_text": doc.text[start:end],
                "document_index": doc.index,
                "document_title": doc.title,
                "start_char_index": start,
                "end_char_index": end,
            }
            if doc.cite
            else None
        )
        segments.append(Segment(claim, citation))
        if i < len(chosen) - 1:
            segments.append(Segment(" "))
    return segments
