"""The planning model (no HTTP): parsed once by composition, and the reachability rule."""

from __future__ import annotations

from veche_gateway.compose import compose
from veche_gateway.model import FieldSet
from veche_gateway.subgraph import load_subgraph

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.11", '
    'import: ["@key", "@shareable", "@external", "@requires", "@provides"])\n'
)
ACCOUNTS = (
    LINK
    + """
type Account @key(fields: "id") @key(fields: "login") { id: ID! login: String! plan: String! }
type Query { account(id: ID!): Account }
"""
)
BILLING = (
    LINK
    + """
type Account @key(fields: "login") {
  login: String!
  plan: String! @external
  invoice: String @requires(fields: "plan")
}
"""
)
AUDIT = (
    LINK
    + """
type Account @key(fields: "id", resolvable: false) { id: ID! }
type Entry { who: Account @provides(fields: "id") at: String }
type Query { log: [Entry!]! }
union Thing = Entry
type Box { thing: Thing }
"""
)
MODEL = compose(
    [
        load_subgraph("accounts", "http://a", ACCOUNTS),
        load_subgraph("billing", "http://b", BILLING),
        load_subgraph("audit", "http://c", AUDIT),
    ]
).model


def test_field_sets_are_parsed_once_under_client_names() -> None:
    assert MODEL.requires_of("billing", "Account", "invoice") == FieldSet.parse("plan")
    assert MODEL.provides_of("audit", "Entry", "who") == FieldSet.parse("id")
    assert [k.text for k in MODEL.entity_keys("accounts", "Account")] == ["id", "login"]
    assert MODEL.entity_keys("audit", "Account") == ()  # not resolvable: no entry key
    assert MODEL.possible_types_in("audit", "Thing") == frozenset({"Entry"})
    assert FieldSet.parse("a b { c }").tree == {"a": {}, "b": {"c": {}}}


def test_a_field_with_requires_is_not_returned_as_is() -> None:
    assert MODEL.field_resolvers("Account", "invoice") == ("billing",)
    assert not MODEL.resolves("billing", "Account", "invoice")
    assert not MODEL.resolves("billing", "Account", "plan")  # external
    assert MODEL.resolves("accounts", "Account", "plan")
    assert MODEL.resolves("audit", "Account", "plan", provided={"plan": {}})


def test_entry_keys_and_reachability() -> None:
    assert MODEL.entry_key("billing", "accounts", "Account") == FieldSet.parse("login")
    assert MODEL.entry_key("accounts", "billing", "Account") == FieldSet.parse("login")
    assert MODEL.entry_key("audit", "billing", "Account") is None  # audit knows only id
    # ... but it reaches billing through accounts (id -> login)
    assert MODEL.reaches("audit", "billing", "Account")
    assert not MODEL.reaches("billing", "audit", "Account")
