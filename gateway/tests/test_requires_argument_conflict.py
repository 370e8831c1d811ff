"""Two `@requires` of one field with different arguments: each representation holds
one value per field, so each gets its own `_entities` call, under aliases of its own."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

from veche_gateway.gateway import GraphQLRequest
from veche_gateway.testing import LocalSubgraph, local_gateway, plan_text

LINK = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
    'import: ["@key", "@external", "@requires"])\n'
)
FEES = (
    LINK
    + """
type Query { permits: [Permit!]! }
type Permit @key(fields: "id") { id: ID! fee(currency: String!): Int! }
"""
)
POSTAGE = (
    LINK
    + """
type Permit @key(fields: "id") {
  id: ID!
  fee(currency: String!): Int! @external
  stampUSD: Int! @requires(fields: "fee(currency: \\"USD\\")")
  stampEUR: Int! @requires(fields: "fee(currency: \\"EUR\\")")
}
"""
)
RATES = {"USD": 10, "EUR": 9}


def _lines(text: str) -> str:
    return dedent(text).strip()


def _fee(base: int) -> Any:
    return lambda _permit, currency: base * RATES[currency]


async def test_each_argument_set_gets_its_own_representation() -> None:
    fees = LocalSubgraph(
        "fees", FEES, root={"permits": [{"id": "p1", "fee": _fee(2)}, {"id": "p2", "fee": _fee(3)}]}
    )
    postage = LocalSubgraph(
        "postage",
        POSTAGE,
        entities={
            "Permit": [
                {"id": p, "stampUSD": lambda p: p["fee"] + 1, "stampEUR": lambda p: p["fee"] + 2}
                for p in ("p1", "p2")
            ]
        },
    )
    gateway = await local_gateway(fees, postage)
    query = "{ permits { id stampUSD stampEUR } }"
    assert plan_text(gateway, query) == _lines(
        """
        QueryPlan {
          Sequence {
            Fetch(service: "fees") {
              query anonymous__fees{permits{_veche_t:__typename id _veche_k_id:id _veche_k_fee_ecbabd:fee(currency:"USD")_veche_k_fee_06eb37:fee(currency:"EUR")}}
            }
            Flatten {
              e0 at Query.permits <- $_veche_reps0: Permit { id: _veche_k_id fee: _veche_k_fee_ecbabd }
              e1 at Query.permits <- $_veche_reps1: Permit { id: _veche_k_id fee: _veche_k_fee_06eb37 }
              Fetch(service: "postage") {
                query anonymous__postage_1($_veche_reps0:[_Any!]!$_veche_reps1:[_Any!]!){e0:_entities(representations:$_veche_reps0){...on Permit{_veche_t:__typename stampUSD}}e1:_entities(representations:$_veche_reps1){...on Permit{_veche_t:__typename stampEUR}}}
              }
            }
          }
        }
        """
    )
    assert await gateway.execute(GraphQLRequest(query), {}) == {
        "data": {
            "permits": [
                {"id": "p1", "stampUSD": 21, "stampEUR": 20},
                {"id": "p2", "stampUSD": 31, "stampEUR": 29},
            ]
        }
    }
    await gateway.stop()
