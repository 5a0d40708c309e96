#!/usr/bin/env node
// ott-upstream — a stand-in for OpenTogetherTube (OTT) used by the tests and the demo.
//
// Plain node:http (HTTP/1.1 only, like OTT's Node server) plus `ws`. Behaves like OTT where
// the proxy can notice: /api/status, Prometheus text at /api/status/metrics, an SPA fallback
// for every other GET, a WebSocket at /api/room/<name> (REST GET on the same path without
// Upgrade), pings every 10 s, two cookies, SIGTERM closes clients with 1001 and exits after 1 s.
// Debug routes for the tests:
//   /debug/headers   (any method) JSON: method, url, httpVersion, rawHeaders pairs, bodyLength
//   /slow?ms=N       answers after N ms
//   /big?kb=N        N KiB body
//   /count           requests seen per path and connections used (JSON: total, connections,
//                    open (of those, open now), paths); /count?path=/x → {"path":"/x","count":n}
//   /status/<code>   answers with that status code and a tiny JSON body
// /api/* routes match case-insensitively and with one trailing slash, like Express.
//
// Usage: node ott-upstream.mjs [--port 8080] [--host 127.0.0.1]
//   env: OTT_UPSTREAM_PORT / PORT, OTT_UPSTREAM_HOST, OTT_UPSTREAM_VERBOSE=1 (one line per
//   request on stderr), OTT_UPSTREAM_PING_MS (default 10000; 0 = no pings),
//   OTT_UPSTREAM_KEEPALIVE_MS (default Node's 5000), OTT_UPSTREAM_NAME (when set: an
//   X-Upstream-Name header on every answer and an "upstream" field in the WebSocket hello, so a
//   test with several upstreams sees which one answered). Prints "ott-upstream listening on
//   http://HOST:PORT" on stdout.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

function arg(name, envNames, dflt) {
    const i = process.argv.indexOf(`--${name}`);
    if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
    const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
    if (eq) return eq.slice(name.length + 3);
    for (const e of envNames) if (process.env[e]) return process.env[e];
    return dflt;
}

const port = Number(arg('port', ['OTT_UPSTREAM_PORT', 'PORT'], '8080'));
const host = arg('host', ['OTT_UPSTREAM_HOST'], '127.0.0.1');
const verbose = process.env.OTT_UPSTREAM_VERBOSE === '1';
// OTT pings every 10 s; OTT_UPSTREAM_PING_MS=0 turns pings off (a truly idle tunnel for tests).
const PING_MS = process.env.OTT_UPSTREAM_PING_MS !== undefined ? Number(process.env.OTT_UPSTREAM_PING_MS) : 10000;
const NAME = process.env.OTT_UPSTREAM_NAME || '';

const counts = new Map(); // path -> requests seen
let totalRequests = 0;
let connections = 0; // TCP connections that carried at least one request other than /count
let openConnections = 0; // of those, still open now
const rooms = new Map(); // name -> Set of sockets

const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>ott-upstream</title></head>
<body><h1>ott-upstream</h1><p>room <b>demo</b>: <span id="s">connecting…</span></p>
<pre id="log"></pre>
<script>
const s = document.getElementById('s'), log = document.getElementById('log');
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/room/demo');
ws.onopen = () => { s.textContent = 'open'; ws.send(JSON.stringify({type: 'chat', text: 'hi'})); };
ws.onmessage = (e) => { log.textContent += e.data + '\\n'; };
ws.onclose = (e) => { s.textContent = 'closed ' + e.code; };
</script></body></html>
`;

function cookies(res) {
    res.setHeader('Set-Cookie', [
        `session=${randomBytes(8).toString('hex')}; Path=/; HttpOnly; Secure`,
        `token=${randomBytes(8).toString('hex')}; Path=/; Secure; SameSite=Lax`,
    ]);
}

function send(res, status, type, body, extra = {}) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': buf.length, ...extra });
    res.end(buf);
}

function json(res, status, obj) {
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(obj));
}

function metricsText() {
    return [
        '# HELP ott_upstream_requests_total Requests seen by the test upstream.',
        '# TYPE ott_upstream_requests_total counter',
        `ott_upstream_requests_total ${totalRequests}`,
        '# HELP ott_upstream_websockets Open WebSockets.',
        '# TYPE ott_upstream_websockets gauge',
        `ott_upstream_websockets ${wss.clients.size}`,
        '',
    ].join('\n');
}

function roomName(pathname) {
    const m = /^\/api\/room\/([^/]+)\/?$/i.exec(pathname);
    return m ? decodeURIComponent(m[1]) : null;
}

function handle(req, res, body) {
    const url = new URL(req.url, 'http://upstream.invalid');
    if (NAME) res.setHeader('X-Upstream-Name', NAME);
    const p = url.pathname;
    // Express (OTT) routes case-insensitively and ignores one trailing slash.
    const api = p.toLowerCase().replace(/(.)\/$/, '$1');
    if (p !== '/count') {
        counts.set(p, (counts.get(p) || 0) + 1);
        totalRequests++;
        if (!req.socket.ottCounted) {
            req.socket.ottCounted = true;
            connections++;
            openConnections++;
            req.socket.once('close', () => openConnections--);
        }
    }

    if (api === '/api/status') return json(res, 200, { status: 'ok' });
    if (api === '/api/status/metrics') return send(res, 200, 'text/plain; version=0.0.4', metricsText());
    if (p.startsWith('/debug/')) {
        cookies(res);
        if (p === '/debug/headers') {
            const pairs = [];
            for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
            return json(res, 200, {
                method: req.method,
                url: req.url,
                httpVersion: req.httpVersion,
                headers: pairs,
                bodyLength: body.length,
                remoteAddress: req.socket.remoteAddress,
            });
        }
        return json(res, 404, { error: 'no such debug route' });
    }
    if (p === '/slow') {
        const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), 600000);
        const t = setTimeout(() => json(res, 200, { slept: ms }), ms);
        res.on('close', () => clearTimeout(t));
        return;
    }
    if (p === '/big') {
        const kb = Math.min(Math.max(Number(url.searchParams.get('kb')) || 0, 0), 1024 * 1024);
        const chunk = Buffer.alloc(64 * 1024, 'x'); // 64 KiB writes: few system calls per response
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': kb * 1024 });
        let left = kb;
        const pump = () => {
            while (left > 0) {
                const n = Math.min(left, 64);
                left -= n;
                if (!res.write(n === 64 ? chunk : chunk.subarray(0, n * 1024))) return res.once('drain', pump);
            }
            res.end();
        };
        return pump();
    }
    if (p === '/count') {
        const one = url.searchParams.get('path');
        if (one !== null) return json(res, 200, { path: one, count: counts.get(one) || 0 });
        return json(res, 200, { total: totalRequests, connections, open: openConnections, paths: Object.fromEntries(counts) });
    }
    const st = /^\/status\/(\d{3})$/.exec(p);
    if (st) return json(res, Number(st[1]), { status: Number(st[1]) });
    const room = roomName(p);
    if (room !== null && req.method === 'GET') {
        const members = rooms.get(room);
        return json(res, 200, { name: room, isTemporary: true, users: members ? members.size : 0 });
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
        if (p === '/') cookies(res);
        return send(res, 200, 'text/html; charset=utf-8', INDEX_HTML);
    }
    return json(res, 404, { error: 'not found' });
}

const server = http.createServer((req, res) => {
    const t0 = Date.now();
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
        size += c.length;
        if (size <= 64 * 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
        if (verbose) {
            res.on('finish', () =>
                process.stderr.write(
                    `ott-upstream ${req.socket.remoteAddress} "${req.method} ${req.url} HTTP/${req.httpVersion}" ` +
                        `${res.statusCode} ${Date.now() - t0}ms\n`,
                ),
            );
        }
        handle(req, res, Buffer.concat(chunks));
    });
});
// Node's defaults stay (keepAliveTimeout 5 s), like OTT: the proxy must not race it.
// OTT_UPSTREAM_KEEPALIVE_MS changes it (tests of the proxy's pool on a shorter time scale).
if (process.env.OTT_UPSTREAM_KEEPALIVE_MS) server.keepAliveTimeout = Number(process.env.OTT_UPSTREAM_KEEPALIVE_MS);

const wss = new WebSocketServer({ noServer: true });

server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://upstream.invalid');
    const room = roomName(url.pathname);
    counts.set(url.pathname, (counts.get(url.pathname) || 0) + 1);
    totalRequests++;
    connections++;
    if (verbose) process.stderr.write(`ott-upstream ${req.socket.remoteAddress} "UPGRADE ${req.url}" room=${room}\n`);
    if (room === null || (req.headers.upgrade || '').toLowerCase() !== 'websocket') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
        if (!rooms.has(room)) rooms.set(room, new Set());
        rooms.get(room).add(ws);
        ws.isAlive = true;
        ws.on('pong', () => (ws.isAlive = true));
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        ws.on('close', () => {
            const set = rooms.get(room);
            if (set) {
                set.delete(ws);
                if (set.size === 0) rooms.delete(room);
            }
        });
        ws.on('error', () => {});
        ws.send(JSON.stringify(NAME ? { type: 'hello', room, upstream: NAME } : { type: 'hello', room }));
    });
});

// Like OTT: a ping to every client every 10 s.
if (PING_MS > 0) {
    const pinger = setInterval(() => {
        for (const ws of wss.clients) {
            try {
                ws.ping();
            } catch {}
        }
    }, PING_MS);
    pinger.unref();
}

server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
});

let stopping = false;
function shutdown(sig) {
    if (stopping) return;
    stopping = true;
    if (verbose) process.stderr.write(`ott-upstream ${sig}: closing ${wss.clients.size} websockets with 1001\n`);
    for (const ws of wss.clients) ws.close(1001, 'server shutting down');
    server.close();
    setTimeout(() => process.exit(0), 1000);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.on('error', (err) => {
    process.stderr.write(`ott-upstream: ${err.message}\n`);
    process.exit(1);
});
server.listen(port, host, () => {
    const a = server.address();
    process.stdout.write(`ott-upstream listening on http://${host}:${a.port}\n`);
});
