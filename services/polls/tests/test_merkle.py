"""The poll log's Merkle tree against RFC 9162: the frontier's root equals the
recursive definition, and every inclusion and consistency proof verifies, while a
changed leaf, index, size or root does not."""

from __future__ import annotations

import hashlib

from veche_polls.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"record {i}".encode()) for i in range(n)]


def test_the_frontier_root_is_the_tree_root_at_every_size() -> None:
    frontier = Frontier.empty()
    assert frontier.root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    all_leaves = leaves(70)
    for size, leaf in enumerate(all_leaves, start=1):
        frontier = frontier.append(leaf)
        assert frontier.size == size
        assert len(frontier.roots) == bin(size).count("1")  # O(log n) kept
        assert frontier.root() == root_of(all_leaves[:size])


def test_the_rfc_9162_hashes_of_a_small_tree() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert a == hashlib.sha256(b"\x00a").digest()
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    assert root_of([a, b, c]) == hashlib.sha256(b"\x01" + ab + c).digest()


def test_every_inclusion_proof_verifies_and_a_tampered_one_does_not() -> None:
    for size in range(1, 21):
        tree = leaves(size)
        root = root_of(tree)
        for index in range(size):
            path = inclusion_proof(tree, index)
            assert verify_inclusion(tree[index], index, size, path, root)
            other = leaf_hash(b"another record")
            assert not verify_inclusion(other, index, size, path, root)
            assert not verify_inclusion(tree[index], index, size, path, leaf_hash(b"x"))
            if size > 1:
                assert not verify_inclusion(tree[index], (index + 1) % size, size, path, root)


def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not() -> None:
    tree = leaves(20)
    for new in range(1, 21):
        for old in range(1, new + 1):
            proof = consistency_proof(tree[:new], old)
            assert verify_consistency(old, new, root_of(tree[:old]), root_of(tree[:new]), proof)
            if old < new:
                rewritten = [leaf_hash(b"changed"), *tree[1:old]]
                assert not verify_consistency(
                    old, new, root_of(rewritten), root_of(tree[:new]), proof
                )
