#!/usr/bin/env node
// startup — time from spawning ott-edge (certificate already on disk) to its first
// successful HTTPS response (status 200 from the upstream), repeated RUNS times.
//
// Usage: node startup.mjs --bin PATH --config FILE --port HTTPS_PORT [--runs 5]
//                         [--timeout-ms 5000]
// Each run: spawn, then try a fresh TLS connection + GET / every ~1 ms until a 200 arrives,
// then SIGTERM the process and wait for it to exit (SIGKILL after 10 s).
// stdout: one JSON line {"runs_ms":[...],"median_ms":..,"min_ms":..,"max_ms":..}; exit 1 when
// a run never got a response in time.
import { spawn } from 'node:child_process';
import https from 'node:https';

function arg(name, dflt) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const bin = arg('bin');
const config = arg('config');
const port = Number(arg('port'));
const runs = Number(arg('runs', '5'));
const timeoutMs = Number(arg('timeout-ms', '5000'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tryOnce() {
    return new Promise((resolve) => {
        const req = https.get(
            {
                host: '127.0.0.1', port, path: '/', agent: false, rejectUnauthorized: false, servername: 'localhost',
                minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', ecdhCurve: 'X25519', timeout: 1000,
            },
            (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode === 200));
            },
        );
        req.on('error', () => resolve(false));
        req.on('timeout', () => {
            req.destroy();
            resolve(false);
        });
    });
}

async function oneRun() {
    const t0 = process.hrtime.bigint();
    const child = spawn(bin, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    let exited = false;
    const exitP = new Promise((r) => child.on('exit', () => { exited = true; r(); }));
    let ms = null;
    while (!exited) {
        if (await tryOnce()) {
            ms = Number(process.hrtime.bigint() - t0) / 1e6;
            break;
        }
        if (Number(process.hrtime.bigint() - t0) / 1e6 > timeoutMs) break;
        await sleep(1);
    }
    if (!exited) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exitP;
    clearTimeout(killer);
    if (ms === null) {
        console.error(`startup: no HTTPS response within ${timeoutMs} ms; ott-edge stderr:\n${stderr}`);
        process.exit(1);
    }
    return ms;
}

const all = [];
for (let r = 0; r < runs; r++) {
    all.push(+(await oneRun()).toFixed(2));
    await sleep(200);
}
const s = [...all].sort((a, b) => a - b);
console.log(JSON.stringify({ runs_ms: all, median_ms: s[Math.floor((s.length - 1) / 2)], min_ms: s[0], max_ms: s[s.length - 1] }));
