#!/usr/bin/env node
// echo-server — the WebSocket upstream for the benchmark: echoes every message back on the
// same connection, answers any plain HTTP request with 200 "ok" (the proxies' health checks),
// and GET /stats with {"tcp_accepted","ws_accepted","ws_open"} (the script logs how many
// upstream connections each proxy opened). No compression, no pings, no idle timeout.
//
// Usage: node echo-server.mjs --port N [--host 127.0.0.1]
// Prints "echo-server listening on HOST:PORT" once listening.
import http from 'node:http';
import { WebSocketServer } from 'ws';

function arg(name, dflt) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '0'));

const stats = { tcp_accepted: 0, ws_accepted: 0, ws_open: 0 };
const server = http.createServer((req, res) => {
    const body = req.url === '/stats' ? JSON.stringify(stats) + '\n' : 'ok';
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
});
server.keepAliveTimeout = 60000;
server.on('connection', () => stats.tcp_accepted++);

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1 << 20 });
wss.on('connection', (ws) => {
    stats.ws_accepted++;
    stats.ws_open++;
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('close', () => stats.ws_open--);
    ws.on('error', () => {});
});

server.listen(port, host, () => console.log(`echo-server listening on ${host}:${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
