// node subscribe.mjs URL TOKEN POLL_ID: subscribes to pollResults with the graphql-ws
// client and prints each update as one JSON line; an error is a line {"error": ...}.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, pollId] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});
client.subscribe(
  {
    query: "subscription($p: ID!) { pollResults(pollId: $p) { totalVotes } }",
    variables: { p: pollId },
  },
  {
    next: (result) => console.log(JSON.stringify(result)),
    error: (error) => {
      console.log(JSON.stringify({ error: String(error?.message ?? error) }));
      process.exit(1);
    },
    complete: () => process.exit(0),
  },
);
