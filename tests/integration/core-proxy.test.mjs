// core-proxy — the reverse proxy to the OTT-like upstream: Set-Cookie and Authorization pass
// unchanged, blocked paths, upstream down (502, /readyz 503) and back, upstream timeout (504),
// and the keep-alive pool never racing Node's 5 s idle close.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
    slow, sleep, waitFor, freePort, startUpstream, startEdge, curl, httpGet, h2Connect, h2Request, httpsGet,
    adminGet, headerValues,
} from '../lib/harness.mjs';

const T = 30000 * slow;

async function upstreamCount(up, p) {
    return JSON.parse((await httpGet(`${up.url}/count?path=${encodeURIComponent(p)}`)).body).count;
}

describe('proxying to the upstream', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('both Set-Cookie headers reach the client over h2', { timeout: T }, async () => {
        const r = await curl(['-k', '--http2', '-D', '-', '-o', '/dev/null', `${edge.url}/debug/headers`]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^HTTP\/2 200/);
        const cookies = r.stdout.split(/\r?\n/).filter((l) => /^set-cookie:/i.test(l));
        assert.equal(cookies.length, 2, r.stdout);
        assert.match(cookies[0], /^set-cookie: session=[0-9a-f]{16}; Path=\/; HttpOnly; Secure$/i);
        assert.match(cookies[1], /^set-cookie: token=[0-9a-f]{16}; Path=\/; Secure; SameSite=Lax$/i);
    });

    it('both Set-Cookie headers reach the client over HTTP/1.1 (also on /)', { timeout: T }, async () => {
        for (const p of ['/debug/headers', '/']) {
            const r = await httpsGet(edge.httpsPort, p);
            assert.equal(r.status, 200);
            assert.equal(r.headers['set-cookie'].length, 2, `${p}: ${JSON.stringify(r.headers['set-cookie'])}`);
            assert.match(r.headers['set-cookie'][0], /^session=/);
            assert.match(r.headers['set-cookie'][1], /^token=.*SameSite=Lax$/);
        }
    });

    it('Authorization and Cookie reach the upstream unchanged (h2 and HTTP/1.1)', { timeout: T }, async () => {
        const auth = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl';
        for (const proto of ['--http2', '--http1.1']) {
            const r = await curl(['-k', proto, '-H', `Authorization: ${auth}`, '-H', 'Cookie: token=abc; session=def', `${edge.url}/debug/headers`]);
            assert.equal(r.code, 0, r.stderr);
            const j = JSON.parse(r.stdout);
            assert.deepEqual(headerValues(j, 'authorization'), [auth], proto);
            assert.deepEqual(headerValues(j, 'cookie'), ['token=abc; session=def'], proto);
        }
    });

    it('method, path, query and body pass unchanged', { timeout: T }, async () => {
        const s = await h2Connect(edge.httpsPort);
        try {
            const r = await h2Request(s, '/debug/headers?a=1&b=%2F&c', { method: 'PUT', body: 'hello world', headers: { 'content-type': 'text/plain' } });
            const j = JSON.parse(r.body);
            assert.equal(j.method, 'PUT');
            assert.equal(j.url, '/debug/headers?a=1&b=%2F&c');
            assert.equal(j.bodyLength, 11);
            assert.equal(j.httpVersion, '1.1', 'the upstream is spoken to in HTTP/1.1');
        } finally {
            s.close();
        }
    });

    it('blocks /api/status/metrics with 404 (case, trailing slash, query) without asking the upstream', { timeout: T }, async () => {
        const variants = ['/api/status/metrics', '/API/Status/Metrics', '/api/status/metrics/', '/api/status/metrics?x=1', '/Api/Status/Metrics/'];
        const before = await upstreamCount(up, '/api/status/metrics');
        for (const proto of ['--http2', '--http1.1']) {
            for (const p of variants) {
                const r = await curl(['-k', proto, '--path-as-is', '-w', '\n%{http_code}', `${edge.url}${p}`]);
                assert.match(r.stdout, /\n404$/, `${proto} ${p} was not blocked: ${r.stdout.slice(0, 200)}`);
                assert.doesNotMatch(r.stdout, /ott_upstream_requests_total/, `${proto} ${p}: upstream metrics leaked`);
            }
        }
        // The upstream routes like Express (case-insensitive, trailing slash): none of these may reach it.
        let seen = 0;
        for (const p of ['/api/status/metrics', '/API/Status/Metrics', '/api/status/metrics/', '/Api/Status/Metrics/']) seen += await upstreamCount(up, p);
        assert.equal(seen - before, 0, 'a blocked path reached the upstream');
        // The health route beside it is not blocked.
        const ok = await curl(['-k', '-w', '\n%{http_code}', `${edge.url}/api/status`]);
        assert.equal(ok.stdout, '{"status":"ok"}\n200');
    });

    it('keeps upstream keep-alive connections safe across Node\'s 5 s idle close', { timeout: 60000 * slow }, async () => {
        // Requests spaced around the upstream's keepAliveTimeout (5 s): a pool that reuses a socket
        // Node is closing answers 502. Every request must be 200.
        const s = await h2Connect(edge.httpsPort);
        try {
            const failures = [];
            for (const gap of [4950, 5000, 5050]) {
                await sleep(gap);
                const rs = await Promise.all(
                    Array.from({ length: 4 }, () => h2Request(s, '/api/status').catch((e) => ({ status: String(e.message) }))),
                );
                for (const r of rs) if (r.status !== 200) failures.push(`after ${gap} ms: ${r.status}`);
            }
            assert.deepEqual(failures, []);
        } finally {
            s.close();
        }
    });
});

describe('keep-alive pool to the upstream', () => {
    const conns = async (up) => JSON.parse((await httpGet(`${up.url}/count`)).body).connections;

    it('reuses upstream connections by default', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url, proxy: { health_interval: '1h' } } });
        try {
            await httpsGet(edge.httpsPort, '/debug/headers');
            const c0 = await conns(up);
            for (let i = 0; i < 5; i++) {
                assert.equal((await httpsGet(edge.httpsPort, '/debug/headers')).status, 200);
                await sleep(100);
            }
            const used = (await conns(up)) - c0;
            assert.ok(used <= 1, `5 sequential requests used ${used} new upstream connections`);
            // ...through ott-edge's per-worker pool (pkg/proxy/pool.c), not libh2o's cross-thread one
            const m = (await adminGet(edge, '/metrics')).body;
            const reused = Number((m.match(/^ott_edge_upstream_connections_reused_total (\d+)$/m) || [])[1]);
            const opened = Number((m.match(/^ott_edge_upstream_connections_opened_total (\d+)$/m) || [])[1]);
            assert.ok(reused >= 4, `reused ${reused} (opened ${opened}): the per-worker pool is not in use`);
            assert.ok(opened >= 1 && opened <= 3, `opened ${opened}`);
        } finally {
            await edge.stop();
            await up.stop();
        }
    });

    it('closes idle upstream connections after proxy.upstream_keepalive', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url, proxy: { health_interval: '1h', upstream_keepalive: '1s' } } });
        const open = async () => JSON.parse((await httpGet(`${up.url}/count`)).body).open;
        try {
            const rs = await Promise.all(Array.from({ length: 4 }, () => httpsGet(edge.httpsPort, '/debug/headers')));
            for (const r of rs) assert.equal(r.status, 200);
            assert.ok((await open()) >= 1, 'no upstream connection kept open after the requests');
            await sleep(300);
            assert.ok((await open()) >= 1, 'idle upstream connections closed long before the keep-alive time');
            await waitFor(async () => (await open()) === 0, 3000, 'idle upstream connections closed after 1 s');
            // and the next request opens a fresh one
            assert.equal((await httpsGet(edge.httpsPort, '/debug/headers')).status, 200);
        } finally {
            await edge.stop();
            await up.stop();
        }
    });

    it('never hands out an idle upstream connection that sent unasked-for bytes', { timeout: T }, async () => {
        // A raw upstream that answers each request, then pushes a forged second response on
        // the idle connection. Reusing that connection would give the next client the forged
        // answer (response desync); the pool must drop it and open a new one.
        let conns = 0, n = 0;
        const raw = net.createServer((sock) => {
            conns++;
            let buf = '';
            sock.on('data', (d) => {
                buf += d.toString('latin1');
                while (buf.includes('\r\n\r\n')) {
                    buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
                    const body = `real-${++n}`;
                    sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
                    setTimeout(() => sock.destroyed || sock.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged'), 50);
                }
            });
            sock.on('error', () => {});
        });
        await new Promise((r) => raw.listen(0, '127.0.0.1', r));
        const edge = await startEdge({ config: { upstream: `http://127.0.0.1:${raw.address().port}`, proxy: { health_interval: '1h' } } });
        try {
            const bodies = [];
            for (let i = 0; i < 4; i++) {
                const r = await httpsGet(edge.httpsPort, '/x');
                bodies.push(`${r.status} ${r.body}`);
                await sleep(300); // the forged bytes arrive while the connection is idle
            }
            assert.deepEqual(bodies.map((b) => b.replace(/real-\d+/, 'real')), Array(4).fill('200 real'), bodies.join(', '));
            assert.ok(conns >= 4, `${conns} upstream connections for 4 requests: a poisoned one was reused`);
        } finally {
            await edge.stop();
            await new Promise((r) => raw.close(r));
        }
    });

    it('proxy.upstream_keepalive: 0 opens one connection per request', { timeout: T }, async () => {
        const up = await startUpstream();
        const edge = await startEdge({ config: { upstream: up.url, proxy: { health_interval: '1h', upstream_keepalive: '0s' } } });
        try {
            await httpsGet(edge.httpsPort, '/debug/headers');
            const c0 = await conns(up);
            for (let i = 0; i < 5; i++) assert.equal((await httpsGet(edge.httpsPort, '/debug/headers')).status, 200);
            assert.equal((await conns(up)) - c0, 5);
        } finally {
            await edge.stop();
            await up.stop();
        }
    });
});

describe('upstream failures', () => {
    let up, edge, upPort;
    before(async () => {
        upPort = await freePort();
        up = await startUpstream({ port: upPort });
        edge = await startEdge({
            config: { upstream: up.url, proxy: { upstream_timeout: '1s', health_interval: '1s' } },
        });
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200 at start');
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('an upstream slower than proxy.upstream_timeout gives 504 in time', { timeout: T }, async () => {
        for (const proto of ['--http2', '--http1.1']) {
            const t0 = Date.now();
            const r = await curl(['-k', proto, '-w', '\n%{http_code}', `${edge.url}/slow?ms=3000`]);
            const took = Date.now() - t0;
            assert.match(r.stdout, /\n504$/, `${proto}: ${r.stdout} ${r.stderr}`);
            assert.ok(r.stdout.length < 4096, 'error body should be small');
            assert.ok(took < 2800 * slow, `${proto}: 504 took ${took} ms (upstream_timeout is 1s)`);
        }
        // A response inside the timeout is fine.
        const ok = await curl(['-k', '-w', '\n%{http_code}', `${edge.url}/slow?ms=200`]);
        assert.match(ok.stdout, /\n200$/);
    });

    it('upstream stopped → 502 with a small body and /readyz 503; restarted → 200 and /readyz 200', { timeout: 60000 * slow }, async () => {
        await up.stop();
        for (const proto of ['--http2', '--http1.1']) {
            const t0 = Date.now();
            const r = await curl(['-k', proto, '-w', '\n%{http_code}', `${edge.url}/api/status`]);
            assert.match(r.stdout, /\n502$/, `${proto}: ${r.stdout} ${r.stderr}`);
            assert.ok(r.stdout.length < 4096, 'error body should be small');
            assert.ok(Date.now() - t0 < 5000 * slow, '502 must not hang');
        }
        const ready = await waitFor(async () => {
            const r = await adminGet(edge, '/readyz');
            return r.status === 503 ? r : null;
        }, 10000, '/readyz 503 with the upstream down');
        assert.ok(ready.body.length < 1024);
        assert.equal((await adminGet(edge, '/livez')).status, 200, '/livez must not depend on the upstream');

        up = await startUpstream({ port: upPort });
        await waitFor(async () => {
            const r = await curl(['-k', '-w', '\n%{http_code}', `${edge.url}/api/status`]);
            return /\n200$/.test(r.stdout);
        }, 10000, 'proxy 200 after the upstream came back');
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200 after the upstream came back');
    });
});

describe('proxy.block_paths configured', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, proxy: { block_paths: ['/private', '/api/status/metrics'] } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('blocks every configured prefix and nothing else', { timeout: T }, async () => {
        for (const p of ['/private', '/private/x', '/PRIVATE/', '/api/status/metrics']) {
            const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}${p}`]);
            assert.equal(r.stdout, '404', p);
        }
        for (const p of ['/', '/privateer', '/api/status', '/public/private']) {
            const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}${p}`]);
            assert.equal(r.stdout, '200', p);
        }
    });
});
