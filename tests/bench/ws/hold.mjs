#!/usr/bin/env node
// hold — opens N WebSockets through a proxy, has each echo one small message (so every
// buffer a proxy allocates on first traffic is in place), then holds them idle until
// SIGTERM or --max-seconds, whichever comes first.
//
// Usage: node hold.mjs --url wss://127.0.0.1:PORT/ws --n 5000 [--concurrency 100]
//                      [--max-seconds 300] [--servername localhost]
// stdout, one JSON line each:
//   {"event":"ready","ready":N,"failed":F,"ms":T,"errors":{...}}   once every attempt ended
//   {"event":"done","still_open":K}                                  on SIGTERM / timeout
// The client TLS is pinned to TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 (what wrk/h2load use).
import WebSocket from 'ws';

function arg(name, dflt) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const url = arg('url');
const n = Number(arg('n', '5000'));
const concurrency = Number(arg('concurrency', '100'));
const maxSeconds = Number(arg('max-seconds', '300'));
const servername = arg('servername', 'localhost');
if (!url || !(n > 0)) {
    console.error('usage: hold.mjs --url wss://HOST:PORT/PATH --n N');
    process.exit(2);
}
const opts = {
    perMessageDeflate: false,
    handshakeTimeout: 15000,
    rejectUnauthorized: false,
    servername,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: 'TLS_AES_128_GCM_SHA256',
    ecdhCurve: 'X25519',
};
const sockets = [];
const errors = {};
let started = 0, ready = 0, failed = 0, ended = 0;
const t0 = Date.now();
const payload = 'x'.repeat(32);

function finishOne(ok, why) {
    if (ok) ready++;
    else {
        failed++;
        errors[why] = (errors[why] || 0) + 1;
    }
    ended++;
    if (ended === n) {
        console.log(JSON.stringify({ event: 'ready', ready, failed, ms: Date.now() - t0, errors }));
    } else if (started < n) {
        startOne();
    }
}

function startOne() {
    started++;
    let settled = false;
    const settle = (ok, why) => {
        if (!settled) {
            settled = true;
            finishOne(ok, why);
        }
    };
    const ws = new WebSocket(url, opts);
    sockets.push(ws);
    ws.on('open', () => ws.send(payload));
    ws.once('message', () => settle(true));
    ws.on('error', (e) => settle(false, e.code || e.message.slice(0, 60)));
    ws.on('close', () => settle(false, 'closed'));
}

for (let i = 0; i < Math.min(concurrency, n); i++) startOne();

function done() {
    const stillOpen = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
    console.log(JSON.stringify({ event: 'done', still_open: stillOpen }));
    for (const s of sockets) s.terminate();
    setTimeout(() => process.exit(0), 200);
}
process.on('SIGTERM', done);
process.on('SIGINT', done);
setTimeout(done, maxSeconds * 1000).unref();
