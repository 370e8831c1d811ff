// @apollo/gateway (in Apollo Server) in front of the subgraphs, for the benchmark.
//   SUBGRAPHS=users=http://127.0.0.1:4001/graphql,... PORT=4100 node serve.mjs
// Loopback only. APOLLO_TELEMETRY_DISABLED must be set: the gateway's metrics
// exporter (and its cloud resource detectors) would otherwise reach outside.
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

if (!['1', 'true'].includes(process.env.APOLLO_TELEMETRY_DISABLED ?? '')) {
  console.error('set APOLLO_TELEMETRY_DISABLED=1');
  process.exit(2);
}
const subgraphs = (process.env.SUBGRAPHS ?? '').split(',').filter(Boolean).map((pair) => {
  const [name, url] = pair.split('=');
  return { name, url };
});

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({ subgraphs }),
  buildService: ({ url }) =>
    new RemoteGraphQLDataSource({
      url,
      willSendRequest({ request, context }) {
        if (context.authorization) request.http.headers.set('authorization', context.authorization);
      },
    }),
});
const server = new ApolloServer({ gateway, csrfPrevention: true, introspection: true });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.PORT ?? 4100) },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
console.log(`apollo gateway ready at ${url}`);
