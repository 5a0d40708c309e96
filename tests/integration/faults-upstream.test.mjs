// faults-upstream — the upstream fails under ott-edge: SIGKILLed while a large response is
// streaming or a slow one is pending (the client sees a truncated/closed response or a
// 502, never a hang), SIGKILLed under an open WebSocket (the client gets a close), slower
// than proxy.upstream_timeout (504 at that time), and flapping (/readyz follows it with
// proxy.health_interval 500ms). After each fault a new upstream on the same port is served.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startEdge, startUpstream, adminGet, slow, waitFor, curl, sleep, freePort, openWs, httpGet } from '../lib/harness.mjs';

const T = 60000 * slow;

// A stand-in upstream that streams slowly (the OTT-like upstream's /big writes as fast as
// loopback allows, so it is done before it can be killed): /drip?chunks=N&ms=M sends N
// 16 KiB chunks M ms apart with a Content-Length; /api/status answers 200.
const DRIP = `
const http = require('node:http');
const port = Number(process.argv[1]);
http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/drip') {
        const n = Number(u.searchParams.get('chunks')) || 100, ms = Number(u.searchParams.get('ms')) || 50;
        const chunk = Buffer.alloc(16384, 'd');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n * chunk.length });
        let i = 0;
        const t = setInterval(() => { res.write(chunk); if (++i === n) { clearInterval(t); res.end(); } }, ms);
        res.on('close', () => clearInterval(t));
        return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
}).listen(port, '127.0.0.1', () => process.stdout.write('listening\\n'));
`;
const drips = new Set();
process.on('exit', () => drips.forEach((p) => p.kill('SIGKILL')));
async function startDrip(port) {
    const proc = spawn(process.execPath, ['-e', DRIP, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    drips.add(proc);
    const exited = new Promise((r) => proc.once('exit', () => (drips.delete(proc), r())));
    await new Promise((resolve, reject) => {
        proc.stdout.once('data', resolve);
        proc.once('exit', () => reject(new Error('drip upstream exited')));
    });
    return { proc, exited, kill: (sig) => proc.kill(sig) };
}

describe('upstream faults', () => {
    let up, edge, upPort;
    const restartUpstream = async () => {
        up = await startUpstream({ port: upPort });
        await waitFor(async () => {
            const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `${edge.url}/api/status`]);
            return r.stdout === '200';
        }, 10000, 'proxy 200 from the new upstream');
    };
    const killUpstream = async () => {
        up.kill('SIGKILL');
        await up.exited;
    };
    before(async () => {
        upPort = await freePort();
        up = await startUpstream({ port: upPort });
        edge = await startEdge({ config: { upstream: up.url, proxy: { upstream_timeout: '1500ms', health_interval: '500ms' } } });
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200 at start');
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    for (const proto of ['--http1.1', '--http2']) {
        it(`upstream SIGKILLed while a response streams (${proto}): truncated, no hang; then served again`, { timeout: T }, async () => {
            // The OTT-like upstream makes way for a slow-streaming one on the same port.
            await up.stop();
            const drip = await startDrip(upPort);
            const chunks = 400; // 400 x 16 KiB, one every 25 ms: 10 s of streaming
            const total = chunks * 16384;
            const t0 = Date.now();
            const big = curl(['-k', proto, '--max-time', '30', '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
                `${edge.url}/drip?chunks=${chunks}&ms=25`], { timeoutMs: 40000 });
            await sleep(2000);
            drip.kill('SIGKILL');
            await drip.exited;
            const tKill = Date.now();
            const r = await big;
            const after = Date.now() - tKill;
            const [code, size] = r.stdout.split(' ').map(Number);
            assert.equal(code, 200, `headers were already sent: ${r.stdout} ${r.stderr}`);
            assert.ok(size > 0 && size < total, `downloaded ${size} of ${total} bytes`);
            assert.ok(r.code !== 28, `curl hit its own --max-time: the proxy left the client hanging (${r.stderr.trim()})`);
            assert.notEqual(r.code, 0, `curl saw a complete response (${size} of ${total} bytes): the truncation was hidden`);
            assert.ok(after < 5000 * slow, `the client noticed ${after} ms after the kill`);
            console.log(`# faults-upstream: ${proto} stream killed after ${tKill - t0} ms: curl exit ${r.code} (${r.stderr.trim()}), ${size} of ${total} bytes, noticed in ${after} ms`);
            await restartUpstream();
            assert.equal(edge.exitInfo, null);
        });

    }
    for (const proto of ['--http1.1', '--http2']) {
        it(`upstream SIGKILLed while /slow is pending (${proto}): 502 at once; then served again`, { timeout: T }, async () => {
            const pending = curl(['-k', proto, '--max-time', '20', '-w', '\n%{http_code}', `${edge.url}/slow?ms=8000`], { timeoutMs: 30000 });
            await waitFor(async () => JSON.parse((await httpGet(`${up.url}/count?path=/slow`)).body).count >= 1, 5000, '/slow at the upstream');
            await sleep(200);
            await killUpstream();
            const tKill = Date.now();
            const r = await pending;
            const after = Date.now() - tKill;
            assert.match(r.stdout, /\n502$/, `${r.code} ${r.stdout} ${r.stderr}`);
            assert.ok(after < 4000 * slow, `502 came ${after} ms after the kill`);
            await restartUpstream();
        });
    }

    it('upstream SIGKILLed under an open WebSocket: the client gets a close; new WebSockets work after', { timeout: T }, async () => {
        const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/killme`);
        const ws2 = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/killme2`);
        assert.deepEqual(await ws.nextJson(), { type: 'hello', room: 'killme' });
        ws.send('before');
        assert.equal(await ws.next(), 'before');
        await killUpstream();
        const tKill = Date.now();
        const info = await Promise.race([ws.closed, sleep(10000 * slow).then(() => null)]);
        const info2 = await Promise.race([ws2.closed, sleep(5000 * slow).then(() => null)]);
        assert.ok(info, 'WebSocket still open 10 s after its upstream was killed');
        assert.ok(info2, 'second WebSocket still open after its upstream was killed');
        const after = Date.now() - tKill;
        // a close frame, not a reset (1006): 1011 tells the browser the server side failed
        assert.equal(info.code, 1011, `close code ${info.code}`);
        assert.equal(info2.code, 1011, `close code ${info2.code}`);
        console.log(`# faults-upstream: WebSocket close after upstream SIGKILL: code ${info.code} (${info2.code}) in ${after} ms`);
        await restartUpstream();
        const again = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/killme`);
        assert.deepEqual(await again.nextJson(), { type: 'hello', room: 'killme' });
        again.send('after');
        assert.equal(await again.next(), 'after');
        again.close();
        const m = (await adminGet(edge, '/metrics')).body;
        assert.equal(edge.exitInfo, null);
        assert.match(m, /ott_edge_/);
    });

    it('an upstream slower than proxy.upstream_timeout (1500ms) gives 504 at that time (h1 and h2)', { timeout: T }, async () => {
        for (const proto of ['--http1.1', '--http2']) {
            const t0 = Date.now();
            const r = await curl(['-k', proto, '--max-time', '10', '-w', '\n%{http_code}', `${edge.url}/slow?ms=6000`]);
            const took = Date.now() - t0;
            assert.match(r.stdout, /\n504$/, `${proto}: ${r.stdout} ${r.stderr}`);
            assert.ok(took >= 1400 && took < 4000 * slow, `${proto}: 504 after ${took} ms (upstream_timeout 1500ms)`);
        }
        // The slow upstream did not take the proxy down.
        const ok = await curl(['-k', '-w', '\n%{http_code}', `${edge.url}/slow?ms=100`]);
        assert.match(ok.stdout, /\n200$/);
    });

    it('identical slow requests on a cold URL wait at most cache.lock_timeout (1s) for each other', { timeout: T }, async () => {
        // the cache coalesces concurrent misses before it knows whether the answer is
        // cacheable; a slow or long-polling URL must not make its callers queue behind it
        // its own ott-edge: this file's has a 1.5 s upstream_timeout
        const e2 = await startEdge({ config: { upstream: up.url } });
        let done;
        try {
            const url = `${e2.url}/slow?ms=3000&k=${Date.now()}`; // a key never seen before
            const t0 = Date.now();
            done = await Promise.all([1, 2, 3, 4].map(() => curl(['-k', '--http1.1', '-o', '/dev/null', '-w', '%{http_code}', url]).then((r) => [r.stdout, Date.now() - t0])));
        } finally {
            await e2.stop();
        }
        console.log(`# faults-upstream: 4 concurrent identical GET /slow?ms=3000 on a cold key finished at ${done.map((d) => d[1]).join(', ')} ms`);
        for (const [code] of done) assert.equal(code, '200');
        // unbounded waiting would end at ~6 s (3 s behind the leader, then 3 s upstream)
        assert.ok(Math.max(...done.map((d) => d[1])) < 5200 * slow, `identical requests were serialized: ${done.map((d) => d[1]).join(', ')} ms`);
    });

    it('upstream flapping: /readyz follows it (health_interval 500ms)', { timeout: T }, async () => {
        const ready = async () => (await adminGet(edge, '/readyz')).status;
        const times = [];
        for (let i = 0; i < 3; i++) {
            await killUpstream();
            let t0 = Date.now();
            await waitFor(async () => (await ready()) === 503, 8000, `/readyz 503 after stop #${i + 1}`);
            const down = Date.now() - t0;
            t0 = Date.now();
            up = await startUpstream({ port: upPort });
            await waitFor(async () => (await ready()) === 200, 8000, `/readyz 200 after start #${i + 1}`);
            const upMs = Date.now() - t0;
            times.push(`${down}/${upMs}`);
            assert.ok(down < 4000 * slow && upMs < 4000 * slow, `/readyz lagged: down ${down} ms, up ${upMs} ms`);
        }
        const r = await curl(['-k', '-w', '\n%{http_code}', `${edge.url}/api/status`]);
        assert.match(r.stdout, /\n200$/);
        assert.equal((await adminGet(edge, '/livez')).status, 200);
        console.log(`# faults-upstream: /readyz lag after kill/restart (ms): ${times.join(', ')}`);
    });
});
