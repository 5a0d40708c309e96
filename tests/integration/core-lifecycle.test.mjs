// core-lifecycle — the admin listener (/livez, /readyz, /metrics), SIGHUP certificate swap
// without disturbing open HTTP/2 connections and WebSockets, and SIGTERM/SIGINT draining.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
    slow, sleep, waitFor, freePort, tmpDir, startUpstream, startEdge, curl, httpGet, adminGet, makeCert, peerCert,
    h2Connect, h2Request, openWs,
} from '../lib/harness.mjs';

const T = 30000 * slow;

/** Prometheus text -> [{name, labels: {..}, value}] */
function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
        assert.ok(m, `not a Prometheus sample line: ${line}`);
        const labels = {};
        if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
        out.push({ name: m[1], labels, value: Number(m[4]) });
    }
    return out;
}

/** The request counter family: ott_edge_*requests* that is not a histogram/duration. */
function requestSamples(samples) {
    return samples.filter((s) => /^ott_edge_(http_)?requests(_total)?$/.test(s.name));
}

async function metrics(edge) {
    const r = await adminGet(edge, '/metrics');
    assert.equal(r.status, 200);
    return { text: r.body, samples: parseMetrics(r.body) };
}

describe('admin endpoints', () => {
    let up, edge, cert;
    before(async () => {
        up = await startUpstream();
        cert = makeCert({ cn: 'admin.test', sans: ['admin.test', 'IP:127.0.0.1'], days: 30 });
        edge = await startEdge({ config: { upstream: up.url, tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('/livez is 200 and /readyz turns 200 with a certificate and a live upstream', { timeout: T }, async () => {
        assert.equal((await adminGet(edge, '/livez')).status, 200);
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');
    });

    it('/metrics counts requests by protocol and code class', { timeout: T }, async () => {
        const before = requestSamples((await metrics(edge)).samples).reduce((a, s) => a + s.value, 0);
        for (let i = 0; i < 3; i++) await curl(['-k', '--http2', '-o', '/dev/null', `${edge.url}/api/status`]);
        for (let i = 0; i < 2; i++) await curl(['-k', '--http1.1', '-o', '/dev/null', `${edge.url}/api/status`]);
        await curl(['-k', '--http2', '-o', '/dev/null', `${edge.url}/api/status/metrics`]); // 404 at the edge
        const m = await metrics(edge);
        const req = requestSamples(m.samples);
        assert.ok(req.length > 0, `no ott_edge_requests_total samples in:\n${m.text}`);
        const after = req.reduce((a, s) => a + s.value, 0);
        assert.ok(after - before >= 6, `request counters moved by ${after - before}, expected >= 6:\n${m.text}`);
        const values = new Set(req.flatMap((s) => Object.values(s.labels)));
        const protoLike = [...values].filter((v) => /^(h2|http2|http\/2|2|HTTP\/2|h1|http1|http\/1\.1|1\.1|HTTP\/1\.1|1)$/i.test(v));
        assert.ok(protoLike.length >= 2, `no protocol label with both h1 and h2 values: ${[...values]}`);
        assert.ok([...values].some((v) => /^2(xx)?$/i.test(v)), `no 2xx code class label: ${[...values]}`);
        assert.ok([...values].some((v) => /^4(xx)?$/i.test(v)), `no 4xx code class label: ${[...values]}`);
    });

    it('/metrics has ott_edge_certificate_expiry_seconds matching the certificate', { timeout: T }, async () => {
        const { samples, text } = await metrics(edge);
        const exp = samples.filter((s) => s.name === 'ott_edge_certificate_expiry_seconds');
        assert.ok(exp.length >= 1, `no ott_edge_certificate_expiry_seconds in:\n${text}`);
        const left = (new Date(cert.x509.validTo).getTime() - Date.now()) / 1000;
        assert.ok(exp.some((s) => Math.abs(s.value - left) < 3600), `expiry ${exp.map((s) => s.value)} vs ${left} s left`);
    });

    it('/metrics has open connections and upstream errors', { timeout: T }, async () => {
        const { samples, text } = await metrics(edge);
        const names = new Set(samples.map((s) => s.name));
        assert.ok([...names].some((n) => /^ott_edge_.*connections/.test(n)), `no connections metric:\n${text}`);
        assert.ok([...names].some((n) => /^ott_edge_upstream_.*(error|fail)/.test(n)), `no upstream errors metric:\n${text}`);
    });

    it('/metrics shows open WebSockets', { timeout: T }, async () => {
        const wsGauge = (samples) => samples.filter((s) => /^ott_edge_.*websocket/.test(s.name) && !/_total$/.test(s.name));
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/m`);
        try {
            await c.nextJson();
            const { samples, text } = await metrics(edge);
            const g = wsGauge(samples);
            assert.ok(g.length > 0 && g.some((s) => s.value >= 1), `no open-WebSocket gauge >= 1:\n${text}`);
        } finally {
            c.close();
        }
        await waitFor(async () => wsGauge((await metrics(edge)).samples).every((s) => s.value === 0), 5000, 'WebSocket gauge back to 0');
    });
});

describe('readiness without an upstream', () => {
    let edge;
    before(async () => {
        const dead = await freePort(); // nothing listens there
        edge = await startEdge({ config: { upstream: `http://127.0.0.1:${dead}`, proxy: { health_interval: '1s' } } });
    });
    after(async () => edge?.stop());

    it('/livez 200, /readyz 503 with a short JSON reason, proxy 502', { timeout: T }, async () => {
        assert.equal((await adminGet(edge, '/livez')).status, 200);
        await sleep(1500);
        const r = await adminGet(edge, '/readyz');
        assert.equal(r.status, 503);
        assert.ok(r.body.length < 1024);
        assert.doesNotThrow(() => JSON.parse(r.body), `not JSON: ${r.body}`);
        const p = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}/api/status`]);
        assert.equal(p.stdout, '502');
    });
});

describe('SIGHUP swaps the certificate without disturbing open connections', () => {
    let up, edge, A, B, live;
    before(async () => {
        up = await startUpstream();
        A = makeCert({ cn: 'cert-a.test', sans: ['swap.test', 'IP:127.0.0.1'], name: 'a' });
        B = makeCert({ cn: 'cert-b.test', sans: ['swap.test', 'IP:127.0.0.1'], name: 'b' });
        const d = tmpDir();
        live = { cert: path.join(d, 'live.pem'), key: path.join(d, 'live.key') };
        copyFileSync(A.certFile, live.cert);
        copyFileSync(A.keyFile, live.key);
        edge = await startEdge({ config: { upstream: up.url, tls: { cert_file: live.cert, key_file: live.key } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('a new handshake sees B while the old h2 session and WebSocket keep working', { timeout: T }, async () => {
        assert.equal((await peerCert(edge.httpsPort, { servername: 'swap.test' })).fingerprint256, A.fingerprint256);
        const s = await h2Connect(edge.httpsPort, { servername: 'swap.test' });
        let goaway = false;
        s.on('goaway', () => (goaway = true));
        const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/swap`, { servername: 'swap.test' });
        try {
            assert.equal((await h2Request(s, '/api/status')).status, 200);
            await ws.nextJson();
            const oldCert = s.socket.getPeerCertificate().fingerprint256;
            assert.equal(oldCert, A.fingerprint256);

            copyFileSync(B.certFile, live.cert);
            copyFileSync(B.keyFile, live.key);
            edge.kill('SIGHUP');
            await waitFor(async () => (await peerCert(edge.httpsPort, { servername: 'swap.test' })).fingerprint256 === B.fingerprint256, 5000, 'certificate B on a new handshake');
            const cv = await curl(['-v', '--cacert', B.certFile, '--resolve', `swap.test:${edge.httpsPort}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_code}', `https://swap.test:${edge.httpsPort}/api/status`]);
            assert.equal(cv.stdout, '200', `curl with B as the only CA: ${cv.stderr}`);

            // The connections opened before the swap are untouched.
            for (let i = 0; i < 3; i++) assert.equal((await h2Request(s, `/api/status?after=${i}`)).status, 200);
            assert.equal(goaway, false, 'the old h2 connection got a GOAWAY');
            assert.equal(s.destroyed || s.closed, false);
            ws.send('after swap');
            assert.equal(await ws.next(), 'after swap');
            assert.equal(ws.closeInfo, null);
            assert.equal((await adminGet(edge, '/readyz')).status, 200);
        } finally {
            ws.close();
            s.close();
        }
    });

    it('a broken certificate on SIGHUP keeps the current one and the process', { timeout: T }, async () => {
        const current = (await peerCert(edge.httpsPort)).fingerprint256;
        writeFileSync(live.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
        edge.kill('SIGHUP');
        await sleep(1000);
        assert.equal(edge.exitInfo, null, `exited on a bad reload: ${edge.stderr()}`);
        assert.equal((await peerCert(edge.httpsPort)).fingerprint256, current);
        // A certificate that does not match the key is refused too.
        copyFileSync(A.certFile, live.cert); // key file still holds B's key
        edge.kill('SIGHUP');
        await sleep(1000);
        assert.equal(edge.exitInfo, null);
        assert.equal((await peerCert(edge.httpsPort)).fingerprint256, current, 'a cert/key mismatch was swapped in');
        const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}/api/status`]);
        assert.equal(r.stdout, '200');
        assert.equal((await adminGet(edge, '/readyz')).status, 200);
    });
});

describe('SIGTERM drains', () => {
    let up;
    before(async () => {
        up = await startUpstream();
    });
    after(async () => up?.stop());

    it('in-flight slow requests finish 200, /readyz 503 at once, h2 gets GOAWAY, exit 0', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, shutdown: { delay: '500ms', grace: '10s' } } });
        try {
            const s = await h2Connect(edge.httpsPort);
            let goaway = false;
            s.on('goaway', () => (goaway = true));
            const before = JSON.parse((await httpGet(`${up.url}/count?path=/slow`)).body).count;
            const h1 = curl(['-k', '--http1.1', '-w', '\n%{http_code}', `${edge.url}/slow?ms=3000`]);
            const h2 = h2Request(s, '/slow?ms=3000', { timeoutMs: 20000 });
            await waitFor(async () => JSON.parse((await httpGet(`${up.url}/count?path=/slow`)).body).count >= before + 2, 3000, 'slow requests at the upstream');
            const t0 = Date.now();
            edge.kill('SIGTERM');
            // The signal reaches ott-edge's main thread asynchronously (a loaded CI machine under
            // ASan took a few ms): /readyz must turn 503 well inside shutdown.delay (500 ms).
            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 503, 400, '/readyz 503 after SIGTERM');
            assert.ok(Date.now() - t0 < 500 * slow, '/readyz turned 503 too late to be inside shutdown.delay');
            const [r1, r2] = await Promise.all([h1, h2]);
            assert.match(r1.stdout, /"slept":3000\}\n200$/, `HTTP/1.1 slow request: ${r1.stdout} ${r1.stderr}`);
            assert.equal(r2.status, 200);
            assert.equal(JSON.parse(r2.body).slept, 3000);
            const ex = await edge.waitExit(15000);
            assert.deepEqual(ex, { code: 0, signal: null }, edge.stderr());
            assert.ok(goaway, 'the open h2 connection got no GOAWAY');
            s.destroy();
        } finally {
            await edge.stop();
        }
    });

    it('keeps serving new requests during shutdown.delay, then stops accepting', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, shutdown: { delay: '2s', grace: '10s' } } });
        try {
            const t0 = Date.now();
            edge.kill('SIGTERM');
            await sleep(500);
            const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}/api/status`]);
            assert.equal(r.stdout, '200', 'a new request during shutdown.delay was not served');
            assert.equal((await adminGet(edge, '/readyz')).status, 503);
            const ex = await edge.waitExit(15000);
            const took = Date.now() - t0;
            assert.deepEqual(ex, { code: 0, signal: null }, edge.stderr());
            assert.ok(took >= 1800, `exited after ${took} ms, before shutdown.delay (2s)`);
            assert.ok(took < 6000 * slow, `took ${took} ms to exit with nothing in flight`);
            const late = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}/api/status`]);
            assert.notEqual(late.stdout, '200');
        } finally {
            await edge.stop();
        }
    });

    it('closes what is left after shutdown.grace and still exits 0', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, shutdown: { delay: '0s', grace: '1s' } } });
        try {
            const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/drain`);
            await ws.nextJson();
            const slowReq = curl(['-k', '-w', '\n%{http_code}', `${edge.url}/slow?ms=20000`], { timeoutMs: 30000 });
            await sleep(300);
            const t0 = Date.now();
            edge.kill('SIGTERM');
            const ex = await edge.waitExit(10000);
            const took = Date.now() - t0;
            assert.deepEqual(ex, { code: 0, signal: null }, edge.stderr());
            assert.ok(took < 5000 * slow, `exit took ${took} ms with grace 1s`);
            const r = await slowReq;
            assert.doesNotMatch(r.stdout, /\n200$/, 'the 20 s request cannot have finished');
            const info = await Promise.race([ws.closed, sleep(3000).then(() => null)]);
            assert.ok(info, 'WebSocket still open after the process exited');
            assert.equal(info.code, 1001, 'a WebSocket left at the end of the drain gets a close frame: 1001 Going Away');
        } finally {
            await edge.stop();
        }
    });

    it('SIGINT drains like SIGTERM', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, shutdown: { delay: '0s', grace: '5s' } } });
        try {
            const slowReq = curl(['-k', '-w', '\n%{http_code}', `${edge.url}/slow?ms=1500`]);
            await sleep(300);
            edge.kill('SIGINT');
            const r = await slowReq;
            assert.match(r.stdout, /\n200$/, `${r.stdout} ${r.stderr}`);
            assert.deepEqual(await edge.waitExit(10000), { code: 0, signal: null }, edge.stderr());
        } finally {
            await edge.stop();
        }
    });
});
