// An MCP client on the official TypeScript SDK, driven by
// TestTypeScriptSDKThroughBalancer (sessions_node_test.go): it connects
// through a round-robin balancer (MCP_URL) with an API key (MCP_TOKEN),
// makes tool calls, waits for a line on stdin (the test kills the replica
// that opened the session meanwhile), makes more calls and ends the session.
//
// Lines on stdout: "SESSION <id>", "PHASE1 <calls>", "PHASE2 <calls>",
// "DONE". Any failure: a message on stderr and exit status 1.
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const CALLS = 20;

const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise(resolve => lines.once('line', resolve));

async function calls(client, n, from) {
    for (let i = 0; i < n; i++) {
        const k = from + i;
        const [name, args] = k % 2 === 0 ? ['pipedrive_get_deal', { deal_id: 1 + (k % 5) }] : ['throttle_status', {}];
        const res = await client.callTool({ name, arguments: args });
        if (res.isError) {
            throw new Error(`call ${k} (${name}) failed: ${JSON.stringify(res.content)}`);
        }
    }
    return n;
}

async function main() {
    const transport = new StreamableHTTPClientTransport(new URL(process.env.MCP_URL), {
        requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } },
        // The GET stream of a replica that dies is reopened through the balancer.
        reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 20 }
    });
    transport.onerror = err => console.error(`transport: ${err?.message ?? err}`);
    const client = new Client({ name: 'balancer-test', version: '1.0.0' });
    await client.connect(transport);
    if (!transport.sessionId) {
        throw new Error('no session id after initialize');
    }
    console.log(`SESSION ${transport.sessionId}`);

    const tools = await client.listTools();
    if (!tools.tools.some(t => t.name === 'pipedrive_get_deal')) {
        throw new Error('pipedrive_get_deal is not listed');
    }
    console.log(`PHASE1 ${await calls(client, CALLS, 0)}`);

    await nextLine(); // the replica that opened the session is gone now
    const done = await calls(client, CALLS, CALLS);
    await client.listTools();
    console.log(`PHASE2 ${done}`);

    await transport.terminateSession();
    await client.close();
    console.log('DONE');
}

main().then(
    () => {
        lines.close();
        process.exit(0);
    },
    err => {
        console.error(`FAIL ${err?.stack ?? err}`);
        process.exit(1);
    }
);
