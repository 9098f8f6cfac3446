// SPDX-License-Identifier: Apache-2.0
//
// A non-Go MCP client for internal/mcp's end-to-end tests, on the official
// TypeScript SDK: `node client.mjs -- COMMAND ARGS...` starts the server
// command over stdio, makes the calls listed (as JSON) in $OV_E2E_CALLS,
// and prints one JSON object: the server's name and version, its tools, and
// one result per call ({error} when the call failed at the protocol level).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
const [command, ...args] = sep >= 0 ? argv.slice(sep + 1) : argv;
const calls = JSON.parse(process.env.OV_E2E_CALLS || "[]");
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: "inherit" });
const client = new Client({ name: "ov-e2e-node", version: "1.0.0" });
await client.connect(transport);

const out = {
  server: client.getServerVersion(),
  tools: (await client.listTools()).tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
  results: [],
};
for (const c of calls) {
  try {
    out.results.push(await client.callTool({ name: c.name, arguments: c.arguments }, undefined, { timeout: 120000 }));
  } catch (e) {
    out.results.push({ error: String(e && e.message ? e.message : e) });
  }
}
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
