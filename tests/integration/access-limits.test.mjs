// access-limits — the per-client limits, checked by counting: a burst of N passes and the
// N+1st gets 429 with Retry-After; over a measured window the bucket lets through exactly
// burst + rate x time; a paths entry's rate is a bucket of its own (OTT's room creation);
// clients are counted apart (real 127.0.0.0/8 sources and addresses carried by a trusted
// proxy), the trusted proxy itself never; WebSocket upgrades per client (max_websockets,
// websocket_rate) refused with 429 before the upstream while other clients keep connecting;
// max_connections refusing the excess at accept (before TLS) and per path with 429.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import WebSocket from 'ws';
import { slow, sleep, waitFor, startEdge, startUpstream } from '../lib/harness.mjs';
import { req, adminReq, metric } from '../lib/access.mjs';

const T = 60000 * slow;
const PROXY = '127.0.0.1';
const xff = (v) => ({ localAddress: PROXY, headers: { 'x-forwarded-for': v } });

/** A client that sends requests one after another on one kept-alive connection. */
function serialClient(port, path, { localAddress, headers = {} }) {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, localAddress, rejectUnauthorized: false });
    return {
        /** Sends one request; resolves to {status, at} (at: when it was sent, client clock). */
        send: () =>
            new Promise((resolve, reject) => {
                const at = performance.now();
                const r = https.request({ host: '127.0.0.1', port, path, headers, agent, servername: 'localhost' }, (res) => {
                    res.resume();
                    res.on('end', () => resolve({ status: res.statusCode, at }));
                });
                r.on('error', reject);
                r.end();
            }),
        close: () => agent.destroy(),
    };
}

/** Opens a WebSocket from localAddress (headers: e.g. X-Forwarded-For); resolves to
 *  {ws} once open or {status} when the upgrade is refused. */
function openWs(port, path, { localAddress, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, { rejectUnauthorized: false, localAddress, headers, handshakeTimeout: 5000 * slow });
        ws.once('open', () => resolve({ ws }));
        ws.once('unexpected-response', (q, res) => {
            resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] });
            ws.terminate();
        });
        ws.once('error', reject);
    });
}

const closeWs = (ws) =>
    new Promise((resolve) => {
        ws.once('close', resolve);
        ws.close();
    });

describe('rates and WebSockets', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({
            config: {
                upstream: up.url,
                proxy: { trusted_proxies: [`${PROXY}/32`] },
                access: {
                    rate: { requests: 6, per: '1m', burst: 8 }, // one more every 10 s: nothing refills during a test
                    websocket_rate: { requests: 100, per: '1s' },
                    max_websockets: 3,
                },
                paths: [
                    { prefix: '/api/fast', access: { rate: { requests: 20, per: '1s', burst: 40 } } },
                    { prefix: '/api/room/create', access: { rate: { requests: 2, per: '1m' } } },
                    { prefix: '/api/room/limited', access: { websocket_rate: { requests: 1, per: '1m', burst: 2 } } },
                    { prefix: '/api/room/free', access: { max_websockets: 0 } },
                ],
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });
    const get = (p, opts) => req(edge.httpsPort, p, opts);

    it('lets a burst of 8 through and answers the 9th with 429 and Retry-After', { timeout: T }, async () => {
        for (const [what, opts] of [
            ['direct client 127.0.0.2', { localAddress: '127.0.0.2' }],
            ['client 10.3.0.1 behind the trusted proxy', xff('10.3.0.1')],
        ]) {
            const got = [];
            for (let i = 0; i < 9; i++) got.push((await get('/api/status', opts)).status);
            assert.deepEqual(got, [...Array(8).fill(200), 429], what);
            const r = await get('/', opts);
            assert.equal(r.status, 429);
            const ra = Number(r.headers['retry-after']);
            assert.ok(ra >= 1 && ra <= 10, `${what}: Retry-After ${r.headers['retry-after']} (one request every 10 s)`);
            assert.match(r.body, /429 Too Many Requests/);
        }
        // clients are counted apart: another address, another /64 ... and the proxy itself never
        assert.equal((await get('/', { localAddress: '127.0.0.3' })).status, 200, 'another direct client');
        assert.equal((await get('/', xff('10.3.0.2'))).status, 200, 'another client behind the proxy');
        assert.equal((await get('/', xff('2001:db8:1:2::1'))).status, 200, 'an IPv6 client');
        for (let i = 0; i < 7; i++) await get('/', xff(`2001:db8:1:2::${i + 2}`));
        assert.equal((await get('/', xff('2001:db8:1:2:ffff::9'))).status, 429, 'the same /64 is the same client');
        assert.equal((await get('/', xff('2001:db8:1:3::1'))).status, 200, 'the next /64 is another');
        for (let i = 0; i < 20; i++) assert.equal((await get('/api/status', { localAddress: PROXY })).status, 200, 'the trusted proxy itself');
    });

    it('refills at the configured rate, counted between two moments the bucket is empty', { timeout: T }, async (t) => {
        // /api/fast: 20 per second, a bucket of 40 (so a pause of the client under 2 s loses nothing)
        const c = serialClient(edge.httpsPort, '/api/fast', { localAddress: '127.0.0.4' });
        try {
            let burst = 0, r;
            const t0 = performance.now();
            while ((r = await c.send()).status === 200) burst++;
            assert.equal(r.status, 429);
            const burstMs = r.at - t0;
            assert.ok(burst >= 40 && burst <= 40 + Math.ceil((20 * burstMs) / 1000) + 1, `the burst: ${burst} in ${burstMs.toFixed(0)} ms`);
            // from this 429 (the bucket holds less than one request) until, after 3 s, the next 429
            const start = r.at;
            let passed = 0, limited = 0;
            for (;;) {
                r = await c.send();
                if (r.status === 200) passed++;
                else if (r.status === 429) limited++;
                else throw new Error(`status ${r.status}`);
                if (r.status === 429 && r.at - start >= 3000) break;
            }
            const expected = (20 * (r.at - start)) / 1000;
            t.diagnostic(`burst ${burst}; then ${passed} passed and ${limited} limited in ${((r.at - start) / 1000).toFixed(3)} s (20/s: ${expected.toFixed(2)})`);
            assert.ok(limited > passed, 'requests came faster than the rate');
            assert.ok(Math.abs(passed - expected) <= 1.5, `${passed} passed where 20/s over ${((r.at - start) / 1000).toFixed(3)} s gives ${expected.toFixed(2)}`);
        } finally {
            c.close();
        }
    });

    it("gives a paths entry's rate its own bucket (OTT's /api/room/create)", { timeout: T }, async () => {
        const from = { localAddress: '127.0.0.5' };
        const got = [];
        for (let i = 0; i < 3; i++) got.push((await get('/api/room/create', { ...from })).status);
        assert.deepEqual(got, [200, 200, 429], 'requests: 2 (burst: the same) per minute');
        assert.equal((await get('/api/status', from)).status, 200, "the site's bucket is untouched");
        for (let i = 0; i < 7; i++) await get('/', from);
        assert.equal((await get('/', from)).status, 429, "the site's bucket is used up");
        assert.equal((await get('/api/fast', from)).status, 200, "another entry's bucket is its own too");
    });

    it('limits open WebSockets per client, before the upstream, while other clients keep connecting', { timeout: T }, async () => {
        const a = [], b = [], c = [];
        for (let i = 0; i < 3; i++) a.push(await openWs(edge.httpsPort, '/api/room/w1', { localAddress: '127.0.0.6' }));
        assert.ok(a.every((x) => x.ws), 'three WebSockets for client A');
        const refused = await openWs(edge.httpsPort, '/api/room/w1', { localAddress: '127.0.0.6' });
        assert.equal(refused.status, 429, "A's fourth is refused");
        for (let i = 0; i < 3; i++) b.push(await openWs(edge.httpsPort, '/api/room/w1', { localAddress: '127.0.0.7' }));
        assert.ok(b.every((x) => x.ws), 'client B connects meanwhile');
        for (let i = 0; i < 3; i++) c.push(await openWs(edge.httpsPort, '/api/room/w1', { localAddress: PROXY, headers: { 'x-forwarded-for': '10.4.0.1' } }));
        assert.ok(c.every((x) => x.ws), 'client C, behind the trusted proxy');
        assert.equal((await openWs(edge.httpsPort, '/api/room/w1', { localAddress: PROXY, headers: { 'x-forwarded-for': '10.4.0.1' } })).status, 429, "C's fourth");
        const d = await openWs(edge.httpsPort, '/api/room/w1', { localAddress: PROXY, headers: { 'x-forwarded-for': '10.4.0.2' } });
        assert.ok(d.ws, 'client D behind the same proxy');
        // the refused upgrades never reached the upstream: its room has exactly the admitted ones
        const room = JSON.parse((await get('/api/room/w1', { localAddress: PROXY })).body);
        assert.equal(room.users, 10, 'the upstream saw 3 + 3 + 3 + 1 WebSockets');
        // one of A's closes: A may open another (the count follows the tunnel's end)
        await closeWs(a[0].ws);
        const again = await waitFor(async () => {
            const x = await openWs(edge.httpsPort, '/api/room/w1', { localAddress: '127.0.0.6' });
            return x.ws ? x : null;
        }, 5000, "A's WebSocket after one closed");
        a[0] = again;
        // a paths entry with max_websockets: 0 has no limit
        const free = await openWs(edge.httpsPort, '/api/room/free', { localAddress: '127.0.0.6' });
        assert.ok(free.ws, 'no limit under /api/room/free');
        for (const x of [...a, ...b, ...c, d, free]) await closeWs(x.ws);
    });

    it('limits WebSocket upgrades per client with websocket_rate, in a bucket of their own', { timeout: T }, async () => {
        const from = { localAddress: '127.0.0.8' };
        const ok1 = await openWs(edge.httpsPort, '/api/room/limited', from);
        const ok2 = await openWs(edge.httpsPort, '/api/room/limited', from);
        const no = await openWs(edge.httpsPort, '/api/room/limited', from);
        assert.ok(ok1.ws && ok2.ws, 'a burst of 2');
        assert.equal(no.status, 429, 'the third upgrade');
        assert.ok(Number(no.retryAfter) >= 1 && Number(no.retryAfter) <= 60, `Retry-After ${no.retryAfter}`);
        assert.equal((await get('/api/room/limited', from)).status, 200, 'plain requests are not upgrades');
        await closeWs(ok1.ws);
        await closeWs(ok2.ws);
    });

    it('counts the 429s per site and limit in /metrics', { timeout: T }, async () => {
        const m = (await adminReq(edge.adminPort, '/metrics')).body;
        const l = (limit) => metric(m, 'ott_edge_access_limited_total', { site: 'default', limit });
        assert.ok(l('rate') >= 5, `rate ${l('rate')}`);
        assert.equal(l('max_websockets'), 2);
        assert.equal(l('websocket_rate'), 1);
        assert.ok(metric(m, 'ott_edge_access_clients') >= 10);
        assert.equal(metric(m, 'ott_edge_access_clients_capacity'), 65536);
    });
});

/** A TLS connection from localAddress; resolves when the handshake is done, rejects when the
 *  server closes first. */
function tlsConnect(port, localAddress) {
    return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, localAddress, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], servername: 'localhost' });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
        s.once('close', () => reject(new Error('closed before the handshake')));
    });
}

describe('max_connections', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({
            config: {
                upstream: up.url,
                proxy: { trusted_proxies: [`${PROXY}/32`] },
                access: { max_connections: 4 },
                paths: [{ prefix: '/api/few', access: { max_connections: 2 } }],
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('closes the excess at accept, before the TLS handshake; other clients and the proxy go on', { timeout: T }, async () => {
        const held = [];
        for (let i = 0; i < 4; i++) held.push(await tlsConnect(edge.httpsPort, '127.0.0.2'));
        await assert.rejects(tlsConnect(edge.httpsPort, '127.0.0.2'), /closed before the handshake|ECONNRESET|socket hang up|disconnected before secure TLS/, 'the fifth');
        const other = await tlsConnect(edge.httpsPort, '127.0.0.3');
        const proxy = [];
        for (let i = 0; i < 6; i++) proxy.push(await tlsConnect(edge.httpsPort, PROXY));
        held[0].destroy();
        // until ott-edge has seen that close, a new connection is still the fifth: count those
        let refusedAgain = 0;
        const again = await waitFor(() => tlsConnect(edge.httpsPort, '127.0.0.2').catch(() => (refusedAgain++, null)), 5000, 'a connection after one closed');
        for (const s of [...held, other, again, ...proxy]) s.destroy();
        const m = (await adminReq(edge.adminPort, '/metrics')).body;
        assert.equal(metric(m, 'ott_edge_access_connections_refused_total'), 1 + refusedAgain);
    });

    it('answers 429 (and closes) under a paths entry with a lower max_connections', { timeout: T }, async () => {
        const keep = [await tlsConnect(edge.httpsPort, '127.0.0.9'), await tlsConnect(edge.httpsPort, '127.0.0.9')];
        await sleep(100);
        const r = await req(edge.httpsPort, '/api/few', { localAddress: '127.0.0.9' });
        assert.equal(r.status, 429, 'a third connection to /api/few');
        assert.equal(r.headers.connection, 'close');
        assert.equal((await req(edge.httpsPort, '/api/status', { localAddress: '127.0.0.9' })).status, 200, 'the site allows 4');
        keep.forEach((s) => s.destroy());
        await waitFor(async () => (await req(edge.httpsPort, '/api/few', { localAddress: '127.0.0.9' })).status === 200, 5000, '/api/few once the others closed');
    });
});
