// sites-routing — several sites on one ott-edge (routing by Host / :authority and TLS server
// name) and upstream pools (balancing, health, retries), with real OTT-like upstreams
// (tests/upstream/ott-upstream.mjs, each named through OTT_UPSTREAM_NAME so that every
// answer says which one served it), curl (--http2 and --http1.1) and the `ws` client.
// Loopback only: names are mapped with curl --resolve and TLS servername options.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, openWs, curl, adminGet, httpGet, waitFor, sleep, slow, makeCert } from '../lib/harness.mjs';

const T = 60000 * slow;

/** curl to name:port (resolved to 127.0.0.1); returns {status, upstream, headers, body}. */
async function get(edge, name, path, { h2 = true, host, method = 'GET', timeoutMs } = {}) {
    const args = ['-k', h2 ? '--http2' : '--http1.1', '-D', '-', '-o', '-', '--resolve', `${name}:${edge.httpsPort}:127.0.0.1`, '-X', method];
    if (host) args.push('-H', `Host: ${host}`);
    args.push(`https://${name}:${edge.httpsPort}${path}`);
    const r = await curl(args, { timeoutMs });
    const m = /^HTTP\/[\d.]+ (\d{3})/m.exec(r.stdout);
    const up = /^x-upstream-name: (\S+)/im.exec(r.stdout);
    return { status: m ? Number(m[1]) : 0, upstream: up ? up[1] : null, raw: r.stdout, code: r.code };
}

const upCount = async (u, path) => JSON.parse((await httpGet(`${u.url}/count?path=${encodeURIComponent(path)}`)).body).count;
const metric = (text, re) => Number(re.exec(text)?.[1] ?? NaN);

describe('sites: routing by name', () => {
    let a, b, edge, edgeDefault;
    before(async () => {
        a = await startUpstream({ env: { OTT_UPSTREAM_NAME: 'A' } });
        b = await startUpstream({ env: { OTT_UPSTREAM_NAME: 'B' } });
        const ca = makeCert({ cn: 'a.test', sans: ['a.test', '*.a.test'] }); // a wildcard site brings its certificate
        const sites = [
            { name: 'a', domains: ['a.test', '*.a.test'], upstream: a.url, tls: { cert_file: ca.certFile, key_file: ca.keyFile } },
            { name: 'b', domains: ['b.test'], upstream: b.url, hsts: '', proxy: { block_paths: ['/secret'] } },
        ];
        edge = await startEdge({ config: { sites, acme: { enabled: false } } });
        edgeDefault = await startEdge({ config: { sites, default_site: 'a', acme: { enabled: false } } });
    });
    after(async () => {
        await edge?.stop();
        await edgeDefault?.stop();
        await a?.stop();
        await b?.stop();
    });

    it('each name reaches its own upstream, over HTTP/2 and HTTP/1.1', { timeout: T }, async () => {
        for (const h2 of [true, false]) {
            assert.equal((await get(edge, 'a.test', '/api/status', { h2 })).upstream, 'A');
            assert.equal((await get(edge, 'b.test', '/api/status', { h2 })).upstream, 'B');
            assert.equal((await get(edge, 'room.a.test', '/api/status', { h2 })).upstream, 'A', 'a wildcard name');
            assert.equal((await get(edge, 'A.TEST', '/api/status', { h2 })).upstream, 'A', 'names are case-insensitive');
        }
    });

    it("each name's WebSocket reaches its own upstream", { timeout: T }, async () => {
        for (const [name, want] of [['a.test', 'A'], ['b.test', 'B']]) {
            const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/r1`, { servername: name, headers: { Host: name } });
            assert.deepEqual(await ws.nextJson(), { type: 'hello', room: 'r1', upstream: want });
            ws.send('ping');
            assert.equal(await ws.next(), 'ping');
            ws.close();
        }
    });

    it('an unknown name is never proxied: 404; with default_site it goes there', { timeout: T }, async () => {
        const before = (await upCount(a, '/x')) + (await upCount(b, '/x'));
        for (const h2 of [true, false]) {
            const r = await get(edge, 'c.test', '/x', { h2 });
            assert.equal(r.status, 404, r.raw);
            assert.equal(r.upstream, null);
            assert.match(r.raw, /No site is served under this name/);
        }
        assert.equal((await upCount(a, '/x')) + (await upCount(b, '/x')), before, 'nothing reached an upstream');
        assert.equal((await get(edgeDefault, 'c.test', '/api/status')).upstream, 'A', 'default_site takes unknown names');
        const m = (await adminGet(edge, '/metrics')).body;
        assert.ok(metric(m, /^ott_edge_misrouted_requests_total (\d+)/m) >= 2, 'counted in /metrics');
    });

    it('a Host that disagrees with the connection TLS name gets 421, never the other site', { timeout: T }, async () => {
        const before = await upCount(b, '/debug/headers');
        for (const h2 of [true, false]) {
            const r = await get(edge, 'a.test', '/debug/headers', { h2, host: 'b.test' });
            assert.equal(r.status, 421, r.raw);
            assert.equal(r.upstream, null);
        }
        // HTTP/2, TLS name a.test, :authority no site has: 421 (the connection carried another name)
        const r = await get(edge, 'a.test', '/debug/headers', { host: 'zzz.test' });
        assert.equal(r.status, 421, r.raw);
        assert.equal(await upCount(b, '/debug/headers'), before, 'site b never saw these requests');
    });

    it('per-site settings apply only to their site (block_paths, hsts)', { timeout: T }, async () => {
        const ra = await get(edge, 'a.test', '/secret');
        const rb = await get(edge, 'b.test', '/secret');
        assert.equal(ra.status, 200, 'site a proxies /secret (the SPA fallback answers)');
        assert.equal(ra.upstream, 'A');
        assert.equal(rb.status, 404, 'site b blocks /secret at the edge');
        assert.equal(rb.upstream, null);
        assert.match(ra.raw, /^strict-transport-security: max-age=31536000/im);
        assert.doesNotMatch(rb.raw, /^strict-transport-security:/im, 'site b turned HSTS off');
    });
});

describe('upstream pools', () => {
    const ups = [];
    let edge;
    const startThree = async (ports) => {
        for (let i = 0; i < 3; i++)
            ups[i] = await startUpstream({ port: ports?.[i], env: { OTT_UPSTREAM_NAME: `U${i + 1}`, OTT_UPSTREAM_PING_MS: '0' } });
    };
    const site = (balance, extra = {}) => ({
        name: 'ott',
        domains: ['ott.test'],
        upstreams: ups.map((u) => u.url),
        balance,
        proxy: { health_interval: '200ms', health_fall: 2, health_rise: 2 },
        ...extra,
    });
    const serverUp = async (url) => metric((await adminGet(edge, '/metrics')).body, new RegExp(`^ott_edge_upstream_server_up\\{site="ott",server="${url.replace(/[.]/g, '\\.')}"\\} (\\d)`, 'm'));
    before(async () => startThree());
    after(async () => {
        await edge?.stop();
        for (const u of ups) await u?.stop();
    });

    it('round_robin spreads requests evenly', { timeout: T }, async () => {
        edge = await startEdge({ config: { sites: [site('round_robin')], acme: { enabled: false } }, waitReady: true });
        const seen = { U1: 0, U2: 0, U3: 0 };
        for (let i = 0; i < 30; i++) seen[(await get(edge, 'ott.test', '/rr', { h2: i % 2 === 0 })).upstream]++;
        assert.deepEqual(seen, { U1: 10, U2: 10, U3: 10 });
        await edge.stop();
    });

    it('least_conn spreads 300 idle WebSockets evenly', { timeout: T }, async () => {
        edge = await startEdge({ config: { sites: [site('least_conn')], acme: { enabled: false } }, waitReady: true });
        const socks = [];
        try {
            for (let i = 0; i < 300; i++) {
                const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/lc${i}`, { servername: 'ott.test', headers: { Host: 'ott.test' } });
                await ws.nextJson();
                socks.push(ws);
            }
            const per = [];
            for (const u of ups) per.push(metric((await httpGet(`${u.url}/api/status/metrics`)).body, /^ott_upstream_websockets (\d+)/m));
            assert.ok(per.every((n) => Math.abs(n - 100) <= 3), `WebSockets per server: ${per}`);
            const m = (await adminGet(edge, '/metrics')).body;
            const open = [...m.matchAll(/^ott_edge_upstream_server_websockets\{site="ott",server="[^"]+"\} (\d+)/gm)].map((x) => Number(x[1]));
            assert.deepEqual(open.sort(), per.slice().sort(), 'ott-edge counts the same per server');
        } finally {
            for (const ws of socks) ws.close();
            await edge.stop();
        }
    });

    it('hash path_segment:3 keeps each room on one server; a stopped server moves only its rooms', { timeout: T }, async () => {
        edge = await startEdge({ config: { sites: [site('hash', { hash_key: 'path_segment:3' })], acme: { enabled: false } }, waitReady: true });
        const rooms = Array.from({ length: 30 }, (_, i) => `room${i}`);
        const home = {};
        for (const r of rooms) {
            const got = new Set();
            for (let k = 0; k < 3; k++) got.add((await get(edge, 'ott.test', `/api/room/${r}`, { h2: k !== 1 })).upstream);
            assert.equal(got.size, 1, `room ${r} went to ${[...got]}`);
            home[r] = [...got][0];
        }
        const used = new Set(Object.values(home));
        assert.equal(used.size, 3, `30 rooms landed on ${[...used]}`);
        const stopped = ups[1];
        await stopped.stop();
        await waitFor(async () => (await serverUp(stopped.url)) === 0, 5000, 'U2 marked down by its health check');
        for (const r of rooms) {
            const now = (await get(edge, 'ott.test', `/api/room/${r}`)).upstream;
            if (home[r] === 'U2') assert.notEqual(now, 'U2', `room ${r} still on the stopped server`);
            else assert.equal(now, home[r], `room ${r} moved from ${home[r]} to ${now} although its server is up`);
        }
        ups[1] = await startUpstream({ port: Number(new URL(stopped.url).port), env: { OTT_UPSTREAM_NAME: 'U2', OTT_UPSTREAM_PING_MS: '0' } });
        await waitFor(async () => (await serverUp(ups[1].url)) === 1, 5000, 'U2 taken back');
        for (const r of rooms) assert.equal((await get(edge, 'ott.test', `/api/room/${r}`)).upstream, home[r], `room ${r} is home again`);
        await edge.stop();
    });

    it('a killed server: connect failures go elsewhere and eject it; in-flight GET retried once, POST gets 502; taken back after recovery', { timeout: T }, async () => {
        // health checks far apart: what happens here is the requests' own doing
        edge = await startEdge({
            config: {
                sites: [site('hash', { hash_key: 'header:x-route', proxy: { health_interval: '30s', health_fall: 2, health_rise: 1 } })],
                acme: { enabled: false },
            },
            waitReady: true,
        });
        const victim = ups[2];
        // a header value that routes to U3
        let key;
        for (let i = 0; i < 200 && key === undefined; i++) {
            const r = await curl(['-k', '-D', '-', '-o', '/dev/null', '-H', `x-route: k${i}`, '--resolve', `ott.test:${edge.httpsPort}:127.0.0.1`, `https://ott.test:${edge.httpsPort}/w`]);
            if (/x-upstream-name: U3/i.test(r.stdout)) key = `k${i}`;
        }
        assert.ok(key, 'no key routed to U3');
        const req = (method, path) =>
            curl(['-k', '-X', method, '-w', '\n%{http_code}', '-D', '-', '-H', `x-route: ${key}`, '--resolve', `ott.test:${edge.httpsPort}:127.0.0.1`, `https://ott.test:${edge.httpsPort}${path}`], { timeoutMs: 20000 });
        const getSlow = req('GET', '/slow?ms=2500');
        const postSlow = req('POST', '/slow?ms=2500');
        await waitFor(async () => (await upCount(victim, '/slow')) === 2, 5000, 'both slow requests at U3');
        victim.kill('SIGKILL');
        const [g, p] = await Promise.all([getSlow, postSlow]);
        assert.match(g.stdout, /\n200$/, `the in-flight GET was retried elsewhere: ${g.stdout}`);
        assert.doesNotMatch(g.stdout, /x-upstream-name: U3/i);
        assert.match(p.stdout, /\n502$/, `the in-flight POST must not be sent twice: ${p.stdout}`);
        // new requests for the key: connect refused -> next server, answered; the server is ejected
        for (let i = 0; i < 3; i++) assert.match((await req('GET', '/after')).stdout, /\n200$/);
        assert.equal(await serverUp(victim.url), 0, 'ejected by failed requests (health_fall 2)');
        assert.equal((await adminGet(edge, '/readyz')).status, 200, 'the site still has servers up');
        ups[2] = await startUpstream({ port: Number(new URL(victim.url).port), env: { OTT_UPSTREAM_NAME: 'U3', OTT_UPSTREAM_PING_MS: '0' } });
        await edge.stop();
        // with health checks: taken back once they pass (and after its ejection back-off)
        edge = await startEdge({ config: { sites: [site('hash', { hash_key: 'header:x-route' })], acme: { enabled: false } }, waitReady: true });
        assert.match((await req('GET', '/back')).stdout, /x-upstream-name: U3/i);
        await edge.stop();
    });

    it('every server down: 502 at once, /readyz 503 naming why; back when one returns', { timeout: T }, async () => {
        edge = await startEdge({ config: { sites: [site('round_robin')], acme: { enabled: false } }, waitReady: true });
        const ports = ups.map((u) => Number(new URL(u.url).port));
        for (const u of ups) await u.stop();
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 503, 5000, '/readyz 503');
        const why = JSON.parse((await adminGet(edge, '/readyz')).body).reason;
        assert.match(why, /upstream is not answering/);
        await sleep(1500); // past the first ejection back-offs
        const t0 = Date.now();
        const r = await get(edge, 'ott.test', '/x');
        assert.equal(r.status, 502);
        assert.ok(Date.now() - t0 < 2000 * slow, 'answered at once');
        await startThree(ports);
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 5000, '/readyz 200 again');
        assert.equal((await get(edge, 'ott.test', '/x')).status, 200);
        await edge.stop();
    });
});
