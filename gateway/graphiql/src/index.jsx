// GraphiQL for the Veche gateway, served by the gateway itself (no CDN).
// The page is the gateway's GET /graphql answer to a browser; it posts every
// operation back to the same URL. A developer pastes an access token into the
// field above the editor (or writes any header in GraphiQL's headers editor).
import { GraphiQL } from 'graphiql';
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
  const fetcher = useCallback(async (graphQLParams, options) => {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    Object.assign(headers, options?.headers ?? {});
    if (tokenRef.current && !hasHeader(headers, 'authorization')) {
      headers.Authorization = `Bearer ${tokenRef.current}`;
    }
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
