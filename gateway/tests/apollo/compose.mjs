// Composes subgraphs with Apollo's own library (@apollo/composition).
// stdin: [{"name", "url", "sdl"}]; stdout: {"errors": [...]} or
// {"apiSchema": the client-visible schema printed by graphql-js, "supergraphSdl": the
// supergraph as `rover supergraph compose` writes it, "hints": [...]}.
import { composeServices } from '@apollo/composition';
import { parse, printSchema } from 'graphql';
import { readFileSync } from 'node:fs';

const subgraphs = JSON.parse(readFileSync(0, 'utf8'));
const result = composeServices(
  subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
);
if (result.errors) {
  console.log(JSON.stringify({ errors: result.errors.map((e) => `${e.extensions?.code ?? ''}: ${e.message}`) }));
} else {
  const api = result.schema.toAPISchema().toGraphQLJSSchema();
  console.log(JSON.stringify({
    apiSchema: printSchema(api),
    supergraphSdl: result.supergraphSdl,
    hints: result.hints.map((h) => `${h.definition?.code ?? ''}: ${h.message}`),
  }));
}
