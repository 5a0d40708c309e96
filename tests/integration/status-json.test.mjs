// status-json — the admin listener's /status.json and status page without a browser:
// the document's shape (sites with their certificate and upstreams, live counts, history
// for the charts, ACME events field), counts that follow real traffic, an upstream that
// goes down and comes back; `ott-edge status` printing the same summary; the admin
// listener on IPv6 (a wildcard address answers on ::1 too); and libh2o's own stderr
// lines arriving as log lines in the configured format.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, adminGet, httpGet, curl, runEdge, rawTls, freePort, makeCert, slow, sleep, waitFor } from '../lib/harness.mjs';

const T = 30000 * slow;

async function status(edge) {
    const r = await adminGet(edge, '/status.json');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/json/);
    return JSON.parse(r.body);
}

describe('/status.json and the status page', () => {
    let up, edge, cert;
    before(async () => {
        up = await startUpstream();
        cert = makeCert({ cn: 'status.test', sans: ['status.test', 'www.status.test', 'IP:127.0.0.1'], days: 30 });
        edge = await startEdge({
            config: {
                domains: ['status.test', 'www.status.test'],
                upstream: up.url,
                tls: { cert_file: cert.certFile, key_file: cert.keyFile },
                proxy: { health_interval: '200ms' },
            },
            waitReady: true,
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('describes the site: certificate names, issuer, days left; the upstream up', { timeout: T }, async () => {
        const s = await status(edge);
        assert.equal(s.ready, true);
        assert.equal(s.ready_reason, null);
        assert.equal(s.draining, false);
        assert.equal(s.cluster, null, 'no cluster.redis: no cluster object');
        assert.equal(typeof s.version, 'string');
        assert.ok(s.started <= s.now);
        assert.equal(s.sites.length, 1);
        const site = s.sites[0];
        assert.equal(site.name, 'status.test');
        assert.deepEqual(site.domains, ['status.test', 'www.status.test']);
        const c = site.certificate;
        assert.equal(c.source, 'file');
        assert.deepEqual(c.names, ['status.test', 'www.status.test', '127.0.0.1']);
        assert.equal(c.subject, 'status.test');
        const left = (new Date(cert.x509.validTo).getTime() / 1000 - s.now) / 86400;
        assert.ok(Math.abs(c.days_left - left) < 0.2, `days_left ${c.days_left}, certificate says ${left}`);
        assert.equal(c.not_after, Math.round(new Date(cert.x509.validTo).getTime() / 1000));
        assert.equal(c.acme, null, 'ACME is off with tls.cert_file');
        assert.equal(site.upstreams.length, 1);
        assert.deepEqual(
            { url: site.upstreams[0].url, state: site.upstreams[0].state, reason: site.upstreams[0].reason },
            { url: up.url, state: 'up', reason: null },
        );
        assert.equal(s.live.rate_limited, null, 'rate limiting is not built yet: null, not 0');
        assert.equal(s.live.connections_by_protocol, null);
        assert.deepEqual(s.acme_events, []);
    });

    it('counts requests by protocol and status class, and keeps a history for the charts', { timeout: T }, async () => {
        const before = await status(edge);
        for (let i = 0; i < 4; i++) await curl(['-k', '--http2', '-o', '/dev/null', `${edge.url}/api/status`]);
        for (let i = 0; i < 3; i++) await curl(['-k', '--http1.1', '-o', '/dev/null', `${edge.url}/api/status`]);
        await curl(['-k', '--http1.1', '-o', '/dev/null', `${edge.url}/api/status/metrics`]); // 404 at the edge
        const s = await status(edge);
        assert.equal(s.live.requests.http2 - before.live.requests.http2, 4);
        assert.equal(s.live.requests.http1 - before.live.requests.http1, 4);
        assert.equal(s.live.requests.total, s.live.requests.http1 + s.live.requests.http2);
        assert.ok(s.live.requests_per_s > 0, `requests_per_s ${s.live.requests_per_s}`);
        assert.ok(s.live.r4xx_per_s > 0, `r4xx_per_s ${s.live.r4xx_per_s}`);
        assert.equal(s.live.cache.enabled, true);
        // one sample every 2 s: wait for a second one, then the series line up
        const h = (await waitFor(async () => ((await status(edge)).history.t.length >= 2 ? status(edge) : null), 8000, 'two history points')).history;
        assert.equal(h.interval_s, 2);
        for (const k of ['requests_per_s', 'r4xx_per_s', 'r5xx_per_s', 'connections', 'websockets', 'cache_hit_ratio']) {
            assert.equal(h[k].length, h.t.length, `history.${k} has ${h[k].length} points, t has ${h.t.length}`);
        }
        assert.ok(h.requests_per_s.some((v) => v > 0), `no traffic in the history: ${JSON.stringify(h.requests_per_s)}`);
        assert.ok(h.t.every((t, i) => i === 0 || t >= h.t[i - 1]));
    });

    it('serves the page: self-contained HTML with a strict content security policy', { timeout: T }, async () => {
        const r = await adminGet(edge, '/');
        assert.equal(r.status, 200);
        assert.match(r.headers['content-type'], /^text\/html/);
        assert.match(r.headers['content-security-policy'], /default-src 'none'/);
        assert.match(r.headers['content-security-policy'], /connect-src 'self'/);
        assert.match(r.body, /^<!doctype html>/);
        assert.match(r.body, /fetch\("\/status\.json"/);
        // nothing the page loads from anywhere else
        assert.doesNotMatch(r.body, /(src|href)=["']?(https?:)?\/\//i);
        assert.doesNotMatch(r.body, /innerHTML|insertAdjacentHTML|document\.write/);
        assert.ok(r.body.length < 24 * 1024, `page is ${r.body.length} bytes`);
        assert.equal((await adminGet(edge, '/nothing-here')).status, 404);
    });

    it('`ott-edge status` prints the same summary', { timeout: T }, async () => {
        const r = await runEdge(['status', '--admin', `127.0.0.1:${edge.adminPort}`]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^ott-edge \S+ at 127\.0\.0\.1:\d+: ready, up /);
        assert.match(r.stdout, /site status\.test/);
        assert.match(r.stdout, /certificate {2}status\.test, www\.status\.test, 127\.0\.0\.1 {2}\(file, issuer status\.test\)/);
        assert.match(r.stdout, /expires \d{4}-\d\d-\d\d \d\d:\d\d UTC, (29\.\d|30\.0) days left/);
        assert.match(r.stdout, new RegExp(`upstream {5}${up.url.replace(/\./g, '\\.')} {2}up\\n`));
        assert.match(r.stdout, /live {9}connections \d+, WebSockets 0/);
        assert.match(r.stdout, /cache {8}hit ratio/);
        assert.match(r.stdout, /flood guard {2}0 connections cut, 0 refused/);
        // listen.admin from the config file when --admin is not given
        const viaConfig = await runEdge(['--config', edge.configPath, 'status']);
        assert.equal(viaConfig.code, 0, viaConfig.stderr);
        assert.match(viaConfig.stdout, /site status\.test/);
    });

    it('`ott-edge status` says why it cannot read the page, exit 1', { timeout: T }, async () => {
        const port = await freePort();
        const r = await runEdge(['status', '--admin', `127.0.0.1:${port}`]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`^status: cannot read /status\\.json from the admin listener at 127\\.0\\.0\\.1:${port}: `));
        const bad = await runEdge(['status', '--admin', 'nonsense']);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /bad admin address 'nonsense'/);
    });
});

describe('an upstream that goes down and comes back', () => {
    let up, edge, port;
    before(async () => {
        port = await freePort();
        up = await startUpstream({ port });
        edge = await startEdge({ config: { upstream: up.url, proxy: { health_interval: '200ms' } }, waitReady: false });
        await waitFor(async () => (await status(edge)).sites[0].upstreams[0].state === 'up', 10000, 'upstream up');
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('shows the state, the reason, 502s and the error, then recovers', { timeout: T }, async () => {
        let s = await status(edge);
        assert.equal(s.sites[0].certificate.source, 'self-signed');
        await up.stop();
        await waitFor(async () => (await status(edge)).sites[0].upstreams[0].state === 'down', 5000, 'upstream down');
        for (let i = 0; i < 3; i++) assert.equal((await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', `${edge.url}/x`])).stdout, '502');
        await sleep(2100); // the next sample has the 502s
        s = await status(edge);
        const u = s.sites[0].upstreams[0];
        assert.equal(u.state, 'down');
        assert.match(u.reason, /not answering|has not answered/);
        assert.ok(u.errors_502 >= 3, `errors_502 ${u.errors_502}`);
        assert.ok(u.recent_errors.length >= 1, JSON.stringify(u));
        assert.match(u.recent_errors[0].error, /refused|server error/i);
        assert.equal(s.ready, false);
        assert.match(s.ready_reason, /upstream/);
        assert.ok(s.live.r5xx_per_s > 0 || s.history.r5xx_per_s.some((v) => v > 0), 'no 5xx rate');
        const cli = await runEdge(['status', '--admin', `127.0.0.1:${edge.adminPort}`]);
        assert.match(cli.stdout, /: not ready \(upstream/);
        assert.match(cli.stdout, /down: upstream is not answering|down: upstream has not answered/);
        assert.match(cli.stdout, /502: [3-9]\d*, 504: 0 in the last/);
        assert.match(cli.stdout, /down at \d{4}-\d\d-\d\d \d\d:\d\d UTC: /);

        up = await startUpstream({ port });
        await waitFor(async () => (await status(edge)).sites[0].upstreams[0].state === 'up', 5000, 'upstream up again');
    });
});

describe('the admin listener on IPv6', () => {
    it('a wildcard listen.admin answers on ::1 and on 127.0.0.1', { timeout: T }, async () => {
        const wild = await freePort();
        const edge = await startEdge({ config: { listen: { admin: `:${wild}` } } });
        try {
            assert.equal((await httpGet(`http://[::1]:${wild}/livez`)).status, 200);
            assert.equal((await httpGet(`http://127.0.0.1:${wild}/livez`)).status, 200);
            const cli = await runEdge(['status', '--admin', `[::1]:${wild}`]);
            assert.equal(cli.code, 0, cli.stderr);
            assert.match(cli.stdout, new RegExp(`at \\[::1\\]:${wild}: `));
        } finally {
            await edge.stop();
        }
    });
});

describe('library messages on stderr', () => {
    it("libh2o's own lines become log lines in the configured format (json)", { timeout: T }, async () => {
        const edge = await startEdge({ config: { log: { format: 'json', level: 'debug' } } });
        try {
            // an HTTP/2 frame of an unknown type (0x16): RFC 9113 says ignore it; libh2o 2.2.5
            // prints "skipping frame (type:22)" on stdio's stderr
            const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
            const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
            const unknown = Buffer.from([0, 0, 0, 0x16, 0, 0, 0, 0, 0]);
            await rawTls(edge.httpsPort, Buffer.concat([preface, settings, unknown]), { alpn: ['h2'], timeoutMs: 1000 });
            const line = await edge.waitForLog(/skipping frame/, 5000);
            const j = JSON.parse(line);
            assert.equal(j.event, 'library_message');
            assert.equal(j.level, 'debug');
            assert.equal(j.msg, 'skipping frame (type:22)');
        } finally {
            await edge.stop();
        }
        const lines = edge.appLogs().filter(Boolean);
        assert.ok(lines.length > 3);
        for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${l}`);
    });

    it('at the default level the line is not shown, and text format wraps it too', { timeout: T }, async () => {
        const edge = await startEdge({ config: { log: { format: 'text', level: 'debug' } } });
        try {
            const unknown = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x16, 0, 0, 0, 0, 0])]);
            await rawTls(edge.httpsPort, unknown, { alpn: ['h2'], timeoutMs: 1000 });
            const line = await edge.waitForLog(/skipping frame/, 5000);
            assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z debug library_message msg="skipping frame \(type:22\)"$/);
        } finally {
            await edge.stop();
        }
        const quiet = await startEdge({ config: { log: { format: 'json' } } });
        try {
            const unknown = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x16, 0, 0, 0, 0, 0])]);
            await rawTls(quiet.httpsPort, unknown, { alpn: ['h2'], timeoutMs: 1000 });
            await sleep(300);
        } finally {
            await quiet.stop();
        }
        assert.ok(!quiet.logs.some((l) => /skipping frame/.test(l)), quiet.stderr());
    });
});
