// GraphQL Code Generator, as a front end would run it against Veche:
// TypeScript types for the gateway's published schema (GET /schema.graphql) and
// for the example client's operations (examples/operations.graphql).
//
// tests/test_gql_client.py runs it with the schema it fetched from the stack:
//   VECHE_SCHEMA=schema.graphql VECHE_DOCUMENTS=../../examples/operations.graphql \
//   VECHE_TYPES_OUT=out npx graphql-codegen --config codegen.ts
// An operation the schema does not accept fails the run (documents are validated).
import type { CodegenConfig } from "@graphql-codegen/cli";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const scalarsAndEnums = {
  // Every custom scalar is mapped on purpose: a new one fails here until its
  // TypeScript shape is decided (and documented for front ends).
  strictScalars: true,
  scalars: {
    Date: "string", // ISO 8601 calendar date, e.g. 2026-12-31 (holidays)
    DateTime: "string", // ISO 8601 with offset, e.g. 2026-12-02T17:44:29+00:00
    JSON: "unknown",
  },
  // Enums as string unions: a shipped app must tolerate values added later.
  enumsAsTypes: true,
  useTypeImports: true,
};

const config: CodegenConfig = {
  schema: env("VECHE_SCHEMA"),
  documents: env("VECHE_DOCUMENTS"),
  ignoreNoDocuments: false,
  generates: {
    // The whole published schema, for reference and for hand-written code.
    [`${env("VECHE_TYPES_OUT")}/schema.ts`]: {
      plugins: ["typescript"],
      config: scalarsAndEnums,
    },
    // One result and one variables type per operation; the input and enum types
    // these use are generated here too (typescript-operations 6), so the two
    // files stand alone.
    [`${env("VECHE_TYPES_OUT")}/operations.ts`]: {
      plugins: ["typescript-operations"],
      config: scalarsAndEnums,
    },
  },
};

export default config;
