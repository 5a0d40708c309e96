#!/usr/bin/env node
// echo-latency — round-trip time of WebSocket messages through a proxy to the echo upstream:
// one connection, a warm-up (WARMUP messages: lets V8 optimise this client before anything is
// timed; with 2,000 the first rounds' p99 was still 2-10x higher), then ROUNDS rounds of COUNT
// sequential messages (the next is sent when the previous echo arrives). Reports p50/p99/max
// per round in microseconds. ws:// URLs work too (no TLS).
//
// Usage: node echo-latency.mjs --url wss://127.0.0.1:PORT/ws [--count 1000] [--rounds 5]
//                              [--size 64] [--warmup 10000] [--max-seconds 60]
//                              [--servername localhost]
// stdout: one JSON line {"rounds":[{"p50":..,"p99":..,"max":..,"mean":..}],"p50_median":..,
//         "p99_median":..,"p50_mean":..,"p99_mean":..} (median/mean over the rounds); exit 1 on
//         any failure (error, close, timeout).
import WebSocket from 'ws';

function arg(name, dflt) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const url = arg('url');
const count = Number(arg('count', '1000'));
const rounds = Number(arg('rounds', '5'));
const size = Number(arg('size', '64'));
const maxSeconds = Number(arg('max-seconds', '60'));
const warmup = Number(arg('warmup', '10000'));
const ws = new WebSocket(url, {
    perMessageDeflate: false,
    handshakeTimeout: 10000,
    rejectUnauthorized: false,
    servername: arg('servername', 'localhost'),
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: 'TLS_AES_128_GCM_SHA256',
    ecdhCurve: 'X25519',
});
const fail = (why) => {
    console.error(`echo-latency: ${why}`);
    process.exit(1);
};
setTimeout(() => fail(`timed out after ${maxSeconds} s`), maxSeconds * 1000).unref();
ws.on('error', (e) => fail(e.message));
ws.on('close', () => fail('connection closed'));

const msg = Buffer.alloc(size, 'm');
const results = [];
let samples = new Float64Array(count);
let round = -1, i = 0, sentAt = 0n;

function pct(sorted, p) {
    return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}
function send() {
    sentAt = process.hrtime.bigint();
    ws.send(msg);
}
ws.on('open', () => send());
ws.on('message', () => {
    const us = Number(process.hrtime.bigint() - sentAt) / 1000;
    if (round < 0) { // warm-up
        if (++i < warmup) return send();
        round = 0;
        i = 0;
        return send();
    }
    samples[i++] = us;
    if (i === count) {
        const s = Array.from(samples).sort((a, b) => a - b);
        const mean = s.reduce((a, b) => a + b, 0) / s.length;
        results.push({ p50: +pct(s, 0.5).toFixed(1), p99: +pct(s, 0.99).toFixed(1), max: +s[s.length - 1].toFixed(1), mean: +mean.toFixed(1) });
        i = 0;
        if (++round === rounds) {
            const avg = (k) => +(results.reduce((a, r) => a + r[k], 0) / results.length).toFixed(1);
            const med = (k) => {
                const v = results.map((r) => r[k]).sort((a, b) => a - b);
                return v.length % 2 ? v[(v.length - 1) / 2] : +((v[v.length / 2 - 1] + v[v.length / 2]) / 2).toFixed(1);
            };
            console.log(JSON.stringify({ rounds: results, p50_median: med('p50'), p99_median: med('p99'), p50_mean: avg('p50'), p99_mean: avg('p99') }));
            ws.removeAllListeners('close');
            ws.terminate();
            process.exit(0);
        }
    }
    send();
});
