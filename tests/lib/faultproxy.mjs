// faultproxy — a small HTTPS proxy in front of a real ACME server (pebble) that turns
// chosen requests into faults. Nothing ACME-specific is faked: in pass-through mode every
// request goes to the real server (Host header kept, so pebble builds its URLs with the
// proxy's address and ott-edge keeps talking through the proxy).
//
//   startFaultProxy({target, ca, cert, key, port}) -> proxy
//     target  'https://127.0.0.1:14080' (the real server's origin), ca: PEM trusting it
//     cert/key PEM for the proxy's own listener (the caller makes ott-edge trust it)
//   proxy.url                 'https://127.0.0.1:<port>'
//   proxy.setFault(fault, match)  fault applies to requests where match(req) is true
//                             (default: all), the others pass through. fault:
//       null                          pass through
//       {type: 'status', status, body, contentType, headers}   answer that instead
//       {type: 'hang', ms}            hold the request (ms, default forever), then drop it
//       {type: 'garbage'}             200 with a body from GARBAGE (cycled) as JSON
//       {type: 'reset'}               destroy the connection at once
//       {type: 'delay', ms}           hold the request ms, then pass it through
//   proxy.requests            [{t, method, path, fault}] (fault: the type, or 'pass')
//   proxy.faulted()           number of requests answered with a fault
//   proxy.close()             closes the listener and every held connection
//
// Matchers: isDirectory(req), isPost(req), notDirectory(req).
import https from 'node:https';

/** Bodies served by {type: 'garbage'}, in turn. */
export const GARBAGE = [
    '{"newNonce": "https://127.0.0.1/nonce", "newAccount": ', // truncated JSON
    '{"status": 12, "newOrder": {"x": []}, "identifiers": "a", "authorizations": 7, "finalize": null}', // wrong types
    '{' + '"a":{'.repeat(5000) + '}'.repeat(5001), // deep nesting
    '"' + 'A'.repeat(300000) + '"', // a big JSON string
    '\x00\x01\x02\xff\xfe not json at all \x7f',
    '[]',
    'null',
    '{"status": "valid", "certificate": 3, "challenges": [{"type": 1, "url": [], "token": {}}]}',
    '{"type": "urn:ietf:params:acme:error:serverInternal", "detail": "' + '\\u0000'.repeat(50) + '"}',
];

export const isDirectory = (req) => req.method === 'GET' && /\/dir$/.test(req.url);
export const notDirectory = (req) => !isDirectory(req);
export const isPost = (req) => req.method === 'POST';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-connection']);

export function startFaultProxy({ target, ca, cert, key, port = 0 }) {
    const t = new URL(target);
    const agent = new https.Agent({ keepAlive: true, ca });
    let fault = null;
    let match = () => true;
    let garbageIdx = 0;
    const requests = [];
    const held = new Set();
    const sockets = new Set();

    function pass(req, res, body) {
        const headers = { ...req.headers };
        for (const h of HOP) delete headers[h];
        headers['content-length'] = String(body.length);
        const up = https.request(
            { host: t.hostname, port: t.port, path: req.url, method: req.method, headers, agent, servername: undefined },
            (ur) => {
                const chunks = [];
                ur.on('data', (c) => chunks.push(c));
                ur.on('end', () => {
                    const out = Buffer.concat(chunks);
                    const h = {};
                    for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k)) h[k] = v;
                    h['content-length'] = String(out.length);
                    res.writeHead(ur.statusCode, h);
                    res.end(out);
                });
                ur.on('error', () => res.destroy());
            },
        );
        up.on('error', (e) => {
            if (!res.headersSent) {
                res.writeHead(502, { 'content-type': 'text/plain' });
                res.end(`faultproxy: ${e.message}\n`);
            } else res.destroy();
        });
        up.end(body);
    }

    function answer(f, req, res) {
        switch (f.type) {
            case 'status': {
                const body = Buffer.from(f.body ?? '<html><body>500 Internal Server Error</body></html>\n');
                res.writeHead(f.status || 500, { 'content-type': f.contentType || 'text/html', 'content-length': body.length, ...(f.headers || {}) });
                res.end(body);
                return;
            }
            case 'garbage': {
                const body = Buffer.from(GARBAGE[garbageIdx++ % GARBAGE.length], 'latin1');
                const h = { 'content-type': 'application/json', 'content-length': body.length };
                // A nonce so that the client gets past nonce handling to the JSON parsers.
                h['replay-nonce'] = 'garbage-nonce-' + garbageIdx;
                // ... and a Location on POSTs, so that a new order's body gets parsed.
                if (req.method === 'POST') h.location = `https://${req.headers.host}/faultproxy/garbage/${garbageIdx}`;
                res.writeHead(200, h);
                res.end(body);
                return;
            }
            case 'hang': {
                held.add(res);
                const done = () => held.delete(res);
                res.on('close', done);
                if (f.ms) {
                    const tm = setTimeout(() => {
                        done();
                        res.destroy();
                    }, f.ms);
                    res.on('close', () => clearTimeout(tm));
                }
                return;
            }
            case 'reset':
                req.socket.destroy();
                return;
            default:
                throw new Error(`faultproxy: unknown fault ${JSON.stringify(f)}`);
        }
    }

    const server = https.createServer({ cert, key }, (req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const f = fault && match(req) ? fault : null;
            requests.push({ t: Date.now(), method: req.method, path: req.url, fault: f ? f.type : 'pass' });
            if (f && f.type === 'delay') setTimeout(() => pass(req, res, Buffer.concat(chunks)), f.ms || 0);
            else if (f) answer(f, req, res);
            else pass(req, res, Buffer.concat(chunks));
        });
    });
    server.keepAliveTimeout = 30000;
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    server.on('tlsClientError', () => {});

    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
            const p = server.address().port;
            resolve({
                port: p,
                url: `https://127.0.0.1:${p}`,
                requests,
                get heldCount() {
                    return held.size;
                },
                setFault(f, m) {
                    fault = f || null;
                    match = m || (() => true);
                },
                faulted: () => requests.filter((r) => r.fault !== 'pass').length,
                close() {
                    for (const r of held) r.destroy();
                    held.clear();
                    for (const s of sockets) s.destroy();
                    agent.destroy();
                    return new Promise((r) => server.close(() => r()));
                },
            });
        });
    });
}
