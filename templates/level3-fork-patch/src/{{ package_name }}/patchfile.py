"""One `git format-patch` file: its header, message and trailers, the files it touches.

Each patch message ends with trailers that say why the patch exists and where it stands
(Yocto's Upstream-Status vocabulary, DEP-3's Origin, and the day it was last reviewed):

    Upstream-Status: Submitted [https://github.com/owner/app/pull/12]
    Origin: vendor
    Last-Update: 2025-01-31
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header

# The trailer `apply` adds to each commit message so that `export` writes every commit
# back to the file it came from; it never reaches a patch file.
FILENAME_TRAILER = "Patch-Filename"

REQUIRED_TRAILERS = ("Upstream-Status", "Origin", "Last-Update")

UPSTREAM_STATUS = re.compile(
    r"^(?:Pending"
    r"|Submitted \[[^\]\s][^\]]*\]"
    r"|Accepted \[[^\]\s][^\]]*\]"
    r"|Backport \[[^\]\s][^\]]*\]"
    r"|Denied \[[^\]\s][^\]]*\]"
    r"|Inactive-Upstream(?: \[[^\]\s][^\]]*\])?"
    r"|Inappropriate \[[^\]\s][^\]]*\])$"
)
UPSTREAM_STATUS_HELP = (
    "Pending | Submitted [url] | Accepted [commit] | Backport [commit]"
    " | Denied [reason] | Inactive-Upstream | Inappropriate [reason]"
)
ORIGIN = re.compile(r"^(?:upstream|backport|vendor|other)(?:, \S.*)?$")
ORIGIN_HELP = (
    "upstream | backport | vendor | other,"
    " optionally followed by ', <url or commit:id>'"
)
PATCH_START = re.compile(rb"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$", re.MULTILINE)
TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s*(.*)$")
NUMBERED = re.compile(r"^\d+[-_.]")
# Patch file names: plain ASCII letters, digits and `._+-`. A space or a non-ASCII
# letter would have to travel through a commit message (and git then adds MIME headers
# to the exported patch), so such names are refused rather than half supported.
PATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.patch$")
PATCH_NAME_RULE = (
    "a patch file name uses only ASCII letters, digits and . _ + -,"
    " starts with a letter or digit and ends in .patch"
)
SLUG_LENGTH = 60
# Where a commit message ends in a patch: a `---` line (before a diffstat) or the diff.
MESSAGE_END = re.compile(rb"^(?:---\r?$|diff --git )", re.MULTILINE)


@dataclass(frozen=True)
class PatchInfo:
    subject: str
    message: list[str]  # the commit message after the subject, without the final ---
    files: list[str]

    def trailers(self) -> dict[str, list[str]]:
        """Trailer values by key, from the message's last paragraph."""
        lines = list(self.message)
        while lines and not lines[-1].strip():
            lines.pop()
        paragraph: list[str] = []
        for line in lines:
            if line.strip():
                paragraph.append(line)
            else:
                paragraph = []
        found: dict[str, list[str]] = {}
        for line in paragraph:
            match = TRAILER.match(line)
            if match:
                found.setdefault(match.group(1), []).append(match.group(2).strip())
        return found


def split_mbox(data: bytes) -> list[bytes]:
    """The patches of a `format-patch --stdout` stream, each from its `From` line."""
    starts = [match.start() for match in PATCH_START.finditer(data)]
    ends = [*starts[1:], len(data)] if starts else []
    return [data[start:end] for start, end in zip(starts, ends, strict=True)]


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a patch file's name, or None when it can."""
    if PATCH_NAME.match(name):
        return None
    return f"{name!r}: {PATCH_NAME_RULE}"


# git's C quoting of a path: these letters after a backslash, or three octal digits.
_ESCAPES = dict(zip('abtnvfr"\\', b'\a\b\t\n\v\f\r"\\', strict=True))


def unquote_path(text: str) -> str:
    """A path as git writes it in a diff: C-quoted when it holds odd bytes."""
    if not (len(text) >= 2 and text.startswith('"') and text.endswith('"')):
        return text
    raw = bytearray()
    body = text[1:-1]
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            raw += char.encode("utf-8")
            index += 1
        elif re.match(r"[0-7]{3}", body[index + 1 : index + 4]):
            raw.append(int(body[index + 1 : index + 4], 8))
            index += 4
        elif body[index + 1 : index + 2] in _ESCAPES:
            raw.append(_ESCAPES[body[index + 1]])
            index += 2
        else:
            raise ValueError(f"malformed quoted path {text}")
    return raw.decode("utf-8", "replace")


def diff_path(line: str) -> str | None:
    """The path of a `diff --git a/X b/X` line (renames are never exported)."""
    rest = line.removeprefix("diff --git ")
    if rest.startswith('"'):
        # Both sides quoted: the second starts at the last ` "b/`.
        cut = rest.rfind(' "b/')
        if cut < 0:
            return None
        return unquote_path(rest[cut + 1 :])[2:]
    if not rest.startswith("a/") or (len(rest) - 5) % 2:
        return None
    half = (len(rest) - 5) // 2
    path = rest[2 : 2 + half]
    return path if rest == f"a/{path} b/{path}" else None


def _header_and_body(data: bytes) -> tuple[list[str], list[str]]:
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    return head.split("\n"), body.split("\n")


def parse_patch(data: bytes) -> PatchInfo:
    """Subject, message and touched files of a patch; ValueError if it is not one."""
    if not PATCH_START.match(data):
        raise ValueError("does not start like a `git format-patch --zero-commit` file")
    head, body = _header_and_body(data)
    subject = _header(head, "Subject")
    if not subject:
        raise ValueError("has no Subject: header")
    # `git am` takes the author from here and refuses a commit without an address.
    # format-patch folds a long `From:` (a long or accented name) before the address.
    if "@" not in _header(head, "From"):
        raise ValueError("has no From: header with the author's e-mail address")
    message: list[str] = []
    files: list[str] = []
    in_message = True
    for line in body:
        if in_message:
            if line == "---" or line.startswith("diff --git "):
                in_message = False
            else:
                message.append(line)
                continue
        if line.startswith("diff --git "):
            path = diff_path(line)
            if path is None:
                raise ValueError(f"cannot read the file names of {line!r}")
            files.append(path)
    if not files:
        raise ValueError("changes no file")
    return PatchInfo(_decoded(subject), message, files)


def _header(head: list[str], name: str) -> str:
    """The first `name:` header of a patch, its folded continuation lines unfolded."""
    lines: list[str] = []
    for line in head:
        if not lines and line.startswith(f"{name}:"):
            lines = [line.removeprefix(f"{name}:").strip()]
        elif lines and line.startswith((" ", "\t")):
            lines.append(line.strip())
        elif lines:
            break
    return " ".join(lines)


def _decoded(subject: str) -> str:
    """The subject as its author wrote it: format-patch writes a non-ASCII subject
    as RFC 2047 encoded words (`=?UTF-8?q?Caf=C3=A9?=`)."""
    if "=?" not in subject:
        return subject
    try:
        return str(make_header(decode_header(subject)))
    except (HeaderParseError, LookupError, UnicodeError):
        return subject


def line_ending_problem(data: bytes) -> str | None:
    """Why the patch's own lines end wrongly (a CRLF conversion), or None."""
    # format-patch ends its own lines with LF, whatever the files' line endings.
    first_line = data.partition(b"\n")[0]
    if first_line.endswith(b"\r"):
        return (
            "has CRLF line endings: something converted the file's line endings"
            " (see .gitattributes; convert it back to LF)"
        )
    return None


def trailer_problems(info: PatchInfo) -> list[str]:
    """What is wrong with the three required trailers; empty when all is well."""
    trailers = info.trailers()
    problems = []
    for key in REQUIRED_TRAILERS:
        values = trailers.get(key, [])
        if not values:
            problems.append(f"no {key}: trailer in the message's last paragraph")
            continue
        if len(values) > 1:
            problems.append(f"{key}: appears {len(values)} times")
            continue
        value = values[0]
        if key == "Upstream-Status" and not UPSTREAM_STATUS.match(value):
            problems.append(
                f"Upstream-Status: {value!r} is malformed: use {UPSTREAM_STATUS_HELP}"
            )
        elif key == "Origin" and not ORIGIN.match(value):
            problems.append(f"Origin: {value!r} is malformed: use {ORIGIN_HELP}")
        elif key == "Last-Update" and not _is_date(value):
            problems.append(
                f"Last-Update: {value!r} is malformed: use a date, YYYY-MM-DD"
            )
    return problems


def _is_date(value: str) -> bool:
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _message_end(data: bytes) -> int:
    """Offset just after the message's last line (before the blank line and diff)."""
    header_end = data.find(b"\n\n")
    match = MESSAGE_END.search(data, header_end + 1)
    if header_end < 0 or match is None:
        raise ValueError("has no diff after its message")
    end = match.start()
    while end > header_end + 1 and data[end - 1 : end] in (b"\n", b"\r"):
        end -= 1
    return data.find(b"\n", end) + 1 if data.find(b"\n", end) >= 0 else end


def add_filename_trailer(data: bytes, name: str) -> bytes:
    """The patch with `Patch-Filename: <name>` as the message's last line."""
    end = _message_end(data)
    return data[:end] + f"{FILENAME_TRAILER}: {name}\n".encode() + data[end:]


def take_filename_trailer(data: bytes) -> tuple[bytes, str | None]:
    """The patch without its `Patch-Filename:` line, and the name it gave (if any)."""
    end = _message_end(data)
    pattern = re.compile(
        rb"^" + FILENAME_TRAILER.encode() + rb": *([^\r\n]*?) *\r?\n", re.MULTILINE
    )
    matches = list(pattern.finditer(data, 0, end))
    if not matches:
        return data, None
    last = matches[-1]
    return data[: last.start()] + data[last.end() :], last.group(1).decode(
        "utf-8", "replace"
    )


def slug_name(subject: str, taken: set[str]) -> str:
    """A patch file name from a subject: lower-case words joined by '-', no number.
    Accented letters lose their accents (`café` -> `cafe`); other non-ASCII goes."""
    plain = unicodedata.normalize("NFKD", subject).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-").split("-")
    slug = ""
    for word in words:
        # Whole words only; a first word longer than the limit is cut.
        longer = f"{slug}-{word}" if slug else word
        if len(longer) > SLUG_LENGTH:
            slug = slug or word[:SLUG_LENGTH]
            break
        slug = longer
    slug = NUMBERED.sub("", slug) or "patch"
    name, counter = f"{slug}.patch", 2
    while name in taken:
        name, counter = f"{slug}-{counter}.patch", counter + 1
    return name
