"""A poll's public log as a Merkle tree, as Certificate Transparency keeps one
(RFC 9162, section 2.1): SHA-256, leaves hashed as H(0x00 || leaf), nodes as
H(0x01 || left || right), so a leaf can never pass for a node.

The log only grows. What the service keeps to append is the frontier: the roots
of the perfect subtrees that the tree size decomposes into (one per bit of the
size), so an append costs O(log n) hashes and never rewrites a leaf. Proofs are
computed from the leaf hashes (the public records hold them); the verifiers need
only the proof, the leaf and the signed root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

Hash = bytes


def leaf_hash(leaf: bytes) -> Hash:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: Hash, right: Hash) -> Hash:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT: Hash = hashlib.sha256(b"").digest()


@dataclass(frozen=True)
class Frontier:
    """The roots of the perfect subtrees of a tree of `size` leaves, left to right."""

    size: int
    roots: tuple[Hash, ...]

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, ())

    def append(self, leaf: Hash) -> Frontier:
        """The frontier with one more leaf: merge equal-sized subtrees, as a binary
        counter carries."""
        roots = [*self.roots, leaf]
        size = self.size + 1
        carried = size
        while carried % 2 == 0:  # each trailing zero bit: the last two merge
            right = roots.pop()
            left = roots.pop()
            roots.append(node_hash(left, right))
            carried //= 2
        return Frontier(size, tuple(roots))

    def root(self) -> Hash:
        """RFC 9162's MTH: the subtrees folded right to left."""
        if not self.roots:
            return EMPTY_ROOT
        root = self.roots[-1]
        for left in reversed(self.roots[:-1]):
            root = node_hash(left, root)
        return root


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_of(leaves: Sequence[Hash]) -> Hash:
    """MTH(D[n]) of the leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def inclusion_proof(leaves: Sequence[Hash], index: int) -> list[Hash]:
    """PATH(m, D[n]) (RFC 9162, 2.1.3.1): the audit path of leaf `index`."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root_of(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root_of(leaves[:k])]


def verify_inclusion(leaf: Hash, index: int, size: int, path: Sequence[Hash], root: Hash) -> bool:
    """RFC 9162, 2.1.3.2."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            r = node_hash(r, p)
        fn //= 2
        sn //= 2
    return sn == 0 and r == root


def consistency_proof(leaves: Sequence[Hash], old_size: int) -> list[Hash]:
    """PROOF(m, D[n]) (RFC 9162, 2.1.4.1) that the tree of `old_size` leaves is a prefix."""
    if old_size == 0 or old_size >= len(leaves):
        return []
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[Hash], whole: bool) -> list[Hash]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root_of(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root_of(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root_of(leaves[:k])]


def verify_consistency(
    old_size: int, new_size: int, old_root: Hash, new_root: Hash, proof: Sequence[Hash]
) -> bool:
    """RFC 9162, 2.1.4.2."""
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0 or old_size > new_size or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            sr = node_hash(sr, c)
        fn //= 2
        sn //= 2
    return fr == old_root and sr == new_root and sn == 0
