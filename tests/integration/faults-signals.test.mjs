// faults-signals — signals under load.
// SIGHUP: a counted run of requests over HTTP/1.1 (keep-alive and a new connection per
// request) and HTTP/2 (long-lived sessions) while the test rewrites tls.cert_file/key_file
// and sends SIGHUP 20 times: zero failed requests out of N, and new handshakes see the
// last certificate. SIGTERM (shutdown.delay 1s, grace 5s) with open WebSockets and
// in-flight requests: the WebSockets keep echoing and the in-flight requests complete
// until the grace period ends, then the process exits 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {
    startEdge, startUpstream, adminGet, slow, waitFor, curl, sleep, makeCert, tmpDir, peerCert, h2Connect, h2Request, openWs, httpGet,
} from '../lib/harness.mjs';

const T = 60000 * slow;

/** Writes file atomically (temp + rename), so a reload never reads half a file. */
function atomicCopy(from, to) {
    const tmp = `${to}.tmp`;
    writeFileSync(tmp, readFileSync(from));
    renameSync(tmp, to);
}

function h1Get(port, pathname, agent) {
    return new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, path: pathname, agent, rejectUnauthorized: false, servername: 'swap.test', timeout: 10000 }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
    });
}

describe('SIGHUP certificate swaps under continuous load', () => {
    let up, edge, certs, live;
    before(async () => {
        up = await startUpstream();
        const d = tmpDir();
        certs = Array.from({ length: 4 }, (_, i) => makeCert({ dir: d, cn: `load-${i}.test`, sans: ['swap.test', 'IP:127.0.0.1'], name: `c${i}` }));
        live = { cert: path.join(d, 'live.pem'), key: path.join(d, 'live.key') };
        atomicCopy(certs[0].certFile, live.cert);
        atomicCopy(certs[0].keyFile, live.key);
        edge = await startEdge({ config: { upstream: up.url, tls: { cert_file: live.cert, key_file: live.key } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('20 SIGHUPs with new certificates during a counted run: zero failed requests', { timeout: T }, async () => {
        const RELOADS = 20;
        const stats = { h1ka: 0, h1new: 0, h2: 0, failed: 0, errors: [] };
        let running = true;
        const fail = (kind, e) => {
            stats.failed++;
            if (stats.errors.length < 10) stats.errors.push(`${kind}: ${e?.message || e}`);
        };
        const kaAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
        const h1Loop = async (agent, key) => {
            while (running) {
                try {
                    const s = await h1Get(edge.httpsPort, '/api/status', agent);
                    if (s === 200) stats[key]++;
                    else fail(key, `status ${s}`);
                } catch (e) {
                    fail(key, e);
                }
            }
        };
        const sessions = [await h2Connect(edge.httpsPort, { servername: 'swap.test' }), await h2Connect(edge.httpsPort, { servername: 'swap.test' })];
        let goaways = 0;
        for (const s of sessions) s.on('goaway', () => goaways++);
        const h2Loop = async (s) => {
            while (running) {
                try {
                    const r = await h2Request(s, '/api/status');
                    if (r.status === 200) stats.h2++;
                    else fail('h2', `status ${r.status}`);
                } catch (e) {
                    fail('h2', e);
                }
            }
        };
        const loops = [
            h1Loop(kaAgent, 'h1ka'), h1Loop(kaAgent, 'h1ka'), h1Loop(kaAgent, 'h1ka'),
            h1Loop(false, 'h1new'), h1Loop(false, 'h1new'), // a new TLS handshake per request
            ...sessions.flatMap((s) => [h2Loop(s), h2Loop(s), h2Loop(s), h2Loop(s)]),
        ];
        let last = 0;
        const t0 = Date.now();
        try {
            await sleep(300);
            for (let i = 1; i <= RELOADS; i++) {
                last = i % certs.length;
                atomicCopy(certs[last].keyFile, live.key);
                atomicCopy(certs[last].certFile, live.cert);
                edge.kill('SIGHUP');
                await sleep(250);
            }
            await sleep(300);
        } finally {
            running = false;
            await Promise.all(loops);
        }
        const secs = (Date.now() - t0) / 1000;
        kaAgent.destroy();
        const n = stats.h1ka + stats.h1new + stats.h2;
        console.log(`# faults-signals: SIGHUP x${RELOADS} in ${secs.toFixed(1)} s: ${n} requests (h1 keep-alive ${stats.h1ka}, h1 new connection ${stats.h1new}, h2 ${stats.h2}), ${stats.failed} failed`);
        assert.equal(stats.failed, 0, `failed requests: ${stats.errors.join('; ')}`);
        // Thousands when the machine is quiet (15,000-25,000 here); the floor only catches a stalled run.
        assert.ok(n >= 500, `only ${n} requests in the run`);
        assert.ok(stats.h1new >= 50, `only ${stats.h1new} new handshakes during the run`);
        assert.equal(goaways, 0, 'an h2 session got GOAWAY');
        for (const s of sessions) {
            assert.equal(s.destroyed || s.closed, false);
            assert.equal((await h2Request(s, '/api/status')).status, 200);
            s.close();
        }
        assert.equal(edge.exitInfo, null);
        await waitFor(async () => (await peerCert(edge.httpsPort, { servername: 'swap.test' })).fingerprint256 === certs[last].fingerprint256, 5000, 'the last certificate on a new handshake');
        assert.equal((await peerCert(edge.httpsPort)).fingerprint256, certs[last].fingerprint256, 'without SNI');
        const reloads = edge.logs.filter((l) => /\breloaded\b/.test(l)).length;
        assert.equal(reloads, RELOADS, `reloads logged: ${reloads}\n${edge.stderr()}`);
        assert.doesNotMatch(edge.stderr(), /reload_failed/);
    });
});

describe('SIGTERM with open WebSockets and in-flight requests', () => {
    let up;
    before(async () => {
        up = await startUpstream({ env: { OTT_UPSTREAM_PING_MS: '0' } });
    });
    after(async () => up?.stop());

    it('nothing fails before shutdown.grace ends; exit 0 after (delay 1s, grace 5s)', { timeout: T }, async () => {
        const DELAY = 1000;
        const GRACE = 5000;
        const edge = await startEdge({ config: { upstream: up.url, shutdown: { delay: '1s', grace: '5s' } } });
        const wss = [];
        try {
            for (let i = 0; i < 5; i++) {
                const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/term${i}`);
                assert.deepEqual(await ws.nextJson(), { type: 'hello', room: `term${i}` });
                wss.push(ws);
            }
            const s = await h2Connect(edge.httpsPort);
            let goaway = false;
            s.on('goaway', () => (goaway = true));
            const before = JSON.parse((await httpGet(`${up.url}/count?path=/slow`)).body).count;
            // distinct URLs: identical concurrent GETs may be coalesced by the edge cache
            const h1 = curl(['-k', '--http1.1', '--max-time', '20', '-w', '\n%{http_code}', `${edge.url}/slow?ms=3000&c=h1`], { timeoutMs: 25000 });
            const h2 = h2Request(s, '/slow?ms=3000&c=h2', { timeoutMs: 20000 });
            const tq = Date.now();
            await waitFor(async () => JSON.parse((await httpGet(`${up.url}/count?path=/slow`)).body).count >= before + 2, 10000, 'slow requests at the upstream');
            const queued = Date.now() - tq;
            if (queued > 1000) console.log(`# faults-signals: the two /slow requests took ${queued} ms to reach the upstream`);

            const t0 = Date.now();
            edge.kill('SIGTERM');
            const exit = edge.exited.then((r) => ({ ...r, at: Date.now() - t0 }));

            // Echo on every WebSocket every 250 ms until just before the grace period ends.
            let echoes = 0;
            const echoFailures = [];
            let k = 0;
            while (Date.now() - t0 < DELAY + GRACE - 600) {
                await Promise.all(
                    wss.map(async (ws, i) => {
                        const msg = `m${k}-${i}`;
                        try {
                            ws.send(msg);
                            const got = await ws.next(2000);
                            if (got === msg) echoes++;
                            else echoFailures.push(`${msg} got ${got}`);
                        } catch (e) {
                            echoFailures.push(`${msg} at ${Date.now() - t0} ms: ${e.message}`);
                        }
                    }),
                );
                k++;
                await sleep(250);
            }
            const [r1, r2] = await Promise.all([h1, h2]);
            assert.deepEqual(echoFailures, [], `WebSocket echoes failed during the grace period (${echoes} ok)`);
            assert.match(r1.stdout, /"slept":3000\}\n200$/, `HTTP/1.1 in-flight request: ${r1.stdout} ${r1.stderr}`);
            assert.equal(r2.status, 200);
            assert.equal(JSON.parse(r2.body).slept, 3000);
            assert.ok(goaway, 'the open h2 session got no GOAWAY');

            const ex = await Promise.race([exit, sleep((DELAY + GRACE + 5000) * slow).then(() => null)]);
            assert.ok(ex, `ott-edge still running ${DELAY + GRACE + 5000} ms after SIGTERM`);
            assert.equal(ex.code, 0, edge.stderr());
            assert.equal(ex.signal, null);
            assert.ok(ex.at >= DELAY + GRACE - 500, `exited ${ex.at} ms after SIGTERM, before the grace period ended, with WebSockets open`);
            const closes = await Promise.all(wss.map((ws) => Promise.race([ws.closed, sleep(3000).then(() => null)])));
            assert.ok(closes.every(Boolean), 'a WebSocket is still open after the process exited');
            assert.deepEqual(
                closes.map((c) => c.code),
                closes.map(() => 1001),
                'every WebSocket left after the grace period is ended with a 1001 close frame',
            );
            console.log(`# faults-signals: SIGTERM: ${echoes} echoes during delay+grace, exit 0 after ${ex.at} ms, WebSocket close codes ${closes.map((c) => c.code).join(',')}`);
            s.destroy();
        } finally {
            for (const ws of wss) ws.ws.terminate();
            await edge.stop();
        }
    });
});
