"""Which part of a bulk scoring job one process takes (`digitlab score --shard K/N`), and
the job key that ties the N parts of one logical run together.

digitlab score --dataset mnist --split train --shard 0/2 &
digitlab score --dataset mnist --split train --shard 1/2
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

JOB_CHARS = 200  # the width of score_shards.job
# The columns are 32-bit; a shard per image of the largest split is far below this.
MAX_SHARDS = 100_000
SHARD_PATTERN = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    index: int  # K, 0-based
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def block(self, total: int) -> range:
        """The K-th of N contiguous blocks of `total` items in order; sizes differ by at
        most one, and the N blocks together are exactly range(total)."""
        return range(total * self.index // self.count, total * (self.index + 1) // self.count)


def parse_shard(text: str) -> Shard:
    """`K/N` with 0 <= K < N; ValueError with a message a user can act on otherwise."""
    match = SHARD_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/4 (K counts from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"--shard {text!r}: N must be between 1 and {MAX_SHARDS:,}")
    if index >= count:
        raise ValueError(f"--shard {text!r}: K counts from 0, so it must be below N={count}")
    return Shard(index, count)


def check_job(job: str) -> str:
    if not job.strip():
        raise ValueError("--job must not be empty")
    if len(job) > JOB_CHARS:
        raise ValueError(f"--job is {len(job)} characters; at most {JOB_CHARS}")
    return job


def default_job(source: str, limit: int | None, version: str) -> str:
    """The same for every shard of one run, different for runs that score other images
    or with another model. A key too long for the column (a deep folder path) keeps its
    start readable and ends in a hash of the whole."""
    key = f"{source} limit={limit or 'all'} model={version}"
    if len(key) <= JOB_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: JOB_CHARS - len(digest) - 1]}#{digest}"
