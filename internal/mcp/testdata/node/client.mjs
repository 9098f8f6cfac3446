// SPDX-License-Identifier: Apache-2.0
//
// A non-Go MCP client for internal/mcp's end-to-end test: it starts the
// server command given as arguments over stdio, calls its tools and prints
// what it got back as one JSON object.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: "inherit" });
const client = new Client({ name: "ov-e2e-node", version: "1.0.0" });
await client.connect(transport);

const out = {
  server: client.getServerVersion(),
  tools: (await client.listTools()).tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })),
  listSecrets: await client.callTool({ name: "list_secrets", arguments: {} }),
  printenv: await client.callTool({ name: "run_command", arguments: { command: ["printenv", "TOKEN"] } }),
  base64: await client.callTool({ name: "run_command", arguments: { command: ["sh", "-c", 'echo "$TOKEN" | base64'], secrets: ["TOKEN"] } }),
  missing: await client.callTool({ name: "run_command", arguments: { command: ["true"], secrets: ["NOPE"] } }),
};
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
