// Bundles GraphiQL for the gateway: node build.mjs [outdir]
// Output (default ../src/veche_gateway/static/graphiql): index.html plus hashed
// app, style and Monaco worker files, each beside a gzipped copy (.gz).
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, '../src/veche_gateway/static/graphiql'));
const staging = `${outdir}.tmp-${process.pid}`;

// Monaco's modules import their CSS; graphiql/dist/style.css already has it all.
const dropMonacoCss = {
  name: 'drop-monaco-css',
  setup(build) {
    build.onResolve({ filter: /\.css$/ }, (args) =>
      /\.(m?js|jsx)$/.test(args.importer) ? { path: args.path, namespace: 'dropped-css' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'dropped-css' }, () => ({ contents: '', loader: 'js' }));
  },
};

const modules = join(here, 'node_modules');
const entries = {
  app: join(here, 'src/index.jsx'),
  style: join(here, 'src/style.css'),
  'editor.worker': join(modules, 'monaco-editor/esm/vs/editor/editor.worker.js'),
  'json.worker': join(modules, 'monaco-editor/esm/vs/language/json/json.worker.js'),
  'graphql.worker': join(modules, 'monaco-graphql/esm/graphql.worker.js'),
};

rmSync(staging, { recursive: true, force: true });
const result = await esbuild.build({
  entryPoints: entries,
  outdir: staging,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  bundle: true,
  format: 'iife',
  minify: true,
  target: ['es2022'],
  jsx: 'automatic',
  loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file' },
  define: { 'process.env.NODE_ENV': '"production"' },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [dropMonacoCss],
});

const files = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const entry = Object.keys(entries).find((name) => resolve(entries[name]) === resolve(meta.entryPoint));
  if (entry) files[entry] = `graphiql/${basename(file)}`;
}
for (const name of Object.keys(entries)) {
  if (!files[name]) throw new Error(`no output for entry ${name}`);
}

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Veche API · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${files.style}">
</head>
<body>
<div id="graphiql"
  data-editor-worker="${files['editor.worker']}"
  data-json-worker="${files['json.worker']}"
  data-graphql-worker="${files['graphql.worker']}">Loading GraphiQL…</div>
<script src="${files.app}"></script>
</body>
</html>
`;
writeFileSync(join(staging, 'index.html'), html);

let raw = 0;
let zipped = 0;
for (const file of Object.keys(result.metafile.outputs).concat(join(staging, 'index.html'))) {
  const path = resolve(file);
  const data = readFileSync(path);
  const gz = gzipSync(data, { level: 9 });
  writeFileSync(`${path}.gz`, gz);
  raw += data.length;
  zipped += gz.length;
}

mkdirSync(dirname(outdir), { recursive: true });
rmSync(outdir, { recursive: true, force: true });
renameSync(staging, outdir);
console.log(`graphiql: ${outdir} (${(raw / 1e6).toFixed(1)} MB, ${(zipped / 1e6).toFixed(1)} MB gzipped)`);
