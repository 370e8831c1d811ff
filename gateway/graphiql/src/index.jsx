// GraphiQL for the Veche gateway, served by the gateway itself (no CDN).
// The page is the gateway's GET /graphql answer to a browser; it posts every
// operation back to the same URL. A developer pastes an access token into the
// field above the editor (or writes any header in GraphiQL's headers editor).
// Subscriptions go over a WebSocket to the same URL (graphql-transport-ws, the
// `graphql-ws` client), the Authorization header in connection_init's payload.
import { GraphiQL } from 'graphiql';
import { getOperationAST, parse } from 'graphql';
import { createClient } from 'graphql-ws';
import { StrictMode, useCallback, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

const root = document.getElementById('graphiql');
const endpoint = window.location.pathname;
const TOKEN_KEY = 'veche:token';

// Monaco's three workers are extra entry points of the build; the page tells
// their hashed file names.
const workers = {
  json: root.dataset.jsonWorker,
  graphql: root.dataset.graphqlWorker,
  editor: root.dataset.editorWorker,
};
globalThis.MonacoEnvironment = {
  getWorker(_workerId, label) {
    const file = workers[label] ?? workers.editor;
    return new Worker(new URL(file, document.baseURI), { name: label });
  },
};

function hasHeader(headers, name) {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

function header(headers, name) {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

// The same origin's WebSocket URL: ws:// beside http://, wss:// beside https://.
const wsEndpoint = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}${endpoint}`;

function isSubscription(graphQLParams) {
  try {
    const operation = getOperationAST(parse(graphQLParams.query), graphQLParams.operationName);
    return operation?.operation === 'subscription';
  } catch {
    return false; // not parseable: the gateway's POST answer says why
  }
}

function closedError(event) {
  const reason = event?.reason ? `: ${event.reason}` : '';
  const code = event?.code ?? 'unknown';
  return { errors: [{ message: `The WebSocket closed (code ${code}${reason})` }] };
}

// One subscription over its own socket (closed when it ends or the user stops it):
// each `next` is one result GraphiQL shows; an `error` or a close is shown as errors.
async function* subscribe(graphQLParams, authorization) {
  const client = createClient({
    url: wsEndpoint,
    connectionParams: authorization ? { Authorization: authorization } : {},
    lazy: true,
    retryAttempts: 0,
  });
  try {
    for await (const result of client.iterate(graphQLParams)) {
      yield result;
    }
  } catch (failure) {
    if (Array.isArray(failure)) {
      yield { errors: failure }; // the protocol's `error`: the gateway's coded errors
    } else if (failure && typeof failure === 'object' && 'code' in failure) {
      yield closedError(failure);
    } else {
      yield { errors: [{ message: String(failure?.message ?? failure) }] };
    }
  } finally {
    await client.dispose();
  }
}

// Queries and mutations: a POST to the endpoint, its JSON answer shown as it is.
async function post(graphQLParams, headers) {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers,
    body: JSON.stringify(graphQLParams),
    credentials: 'same-origin',
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
  }
}

function Page() {
  const params = new URLSearchParams(window.location.search);
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY) ?? '');
  const tokenRef = useRef(token);

  const onToken = useCallback((event) => {
    const value = event.target.value.trim().replace(/^Bearer\s+/i, '');
    tokenRef.current = value;
    sessionStorage.setItem(TOKEN_KEY, value);
    setToken(value);
  }, []);

  // Stable, so GraphiQL introspects once; the token is read at each request.
  const fetcher = useCallback((graphQLParams, options) => {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    Object.assign(headers, options?.headers ?? {});
    if (tokenRef.current && !hasHeader(headers, 'authorization')) {
      headers.Authorization = `Bearer ${tokenRef.current}`;
    }
    if (isSubscription(graphQLParams)) {
      return subscribe(graphQLParams, header(headers, 'authorization'));
    }
    return post(graphQLParams, headers);
  }, []);

  return (
    <div className="veche-page">
      <form className="veche-bar" onSubmit={(event) => event.preventDefault()}>
        <strong>Veche API</strong>
        <label htmlFor="veche-token">Access token</label>
        <input
          id="veche-token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="paste an access token (sent as Authorization: Bearer …)"
          value={token}
          onChange={onToken}
        />
        <span className="veche-hint">
          {token ? 'sent with every request' : 'anonymous'} · <a href="schema.graphql">SDL</a>
        </span>
      </form>
      <div className="veche-ide">
        <GraphiQL
          fetcher={fetcher}
          initialQuery={params.get('query') ?? undefined}
          initialVariables={params.get('variables') ?? undefined}
          isHeadersEditorEnabled
          shouldPersistHeaders={false}
        />
      </div>
    </div>
  );
}

createRoot(root).render(
  <StrictMode>
    <Page />
  </StrictMode>,
);
