"""Lines of a text stream with a length limit, numbered, read in blocks: memory stays bounded
whatever the input (a 300 MB line is refused after reading MAX_LINE_CHARS of it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from .common import FileFault

MAX_LINE_CHARS = 1 << 20  # 1 MiB of text: a real row is a few hundred characters
BLOCK_CHARS = 1 << 18  # read size of the row loop

LINE_RULE = f"a line is at most {MAX_LINE_CHARS} characters (1 MiB)"


class LineSource:
    """`readline()` for header lines, then `blocks()` for the rows. `lineno` is the number of the
    last line handed out. Lines given back by `unread` are handed out again first."""

    def __init__(self, stream: TextIO, max_line: int = MAX_LINE_CHARS, block: int | None = None):
        block = block or BLOCK_CHARS
        if block > max_line:
            raise ValueError("the block size must not exceed the line limit")
        self.stream = stream
        self.max_line = max_line
        self.block = block
        self.lineno = 0
        self._pending: list[str] = []
        self.tail = ""  # after blocks(): the text after the last newline (a cut-off last line)

    def _too_long(self, lineno: int) -> FileFault:
        return FileFault(f"line longer than {self.max_line} characters", line=lineno, rule=LINE_RULE)

    def readline(self) -> str:
        """The next line with its newline ("" at the end, no newline if the file ends inside it)."""
        if self._pending:
            line = self._pending.pop()
        else:
            line = self.stream.readline(self.max_line + 1)
            if len(line) - line.endswith("\n") > self.max_line:
                raise self._too_long(self.lineno + 1)
        if line:
            self.lineno += 1
        return line

    def unread(self, line: str) -> None:
        if line:
            self._pending.append(line)
            self.lineno -= 1

    def blocks(self) -> Iterator[list[str]]:
        """The remaining complete lines, without their "\\n" (CRLF read as LF), in lists of a few
        hundred. Afterwards `tail` holds what follows the last newline."""
        carry = "".join(reversed(self._pending))
        self._pending.clear()
        read, block, limit = self.stream.read, self.block, self.max_line
        while True:
            chunk = read(block)
            if not chunk:
                break
            text = carry + chunk if carry else chunk
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            carry = lines.pop()
            if len(carry) > limit:
                raise self._too_long(self.lineno + len(lines) + 1)
            if lines:
                # only the first line can span several reads: the others fit in this chunk
                if len(lines[0]) > limit:
                    raise self._too_long(self.lineno + 1)
                yield lines
                self.lineno += len(lines)
        if carry.endswith("\r"):
            carry = carry[:-1]
        self.tail = carry
