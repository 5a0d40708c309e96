// access-rules — access.allow / access.deny decided on the client the trust rules give:
// direct peers (real source addresses in 127.0.0.0/8), clients carried in a trusted proxy's
// X-Forwarded-For, and spoofed X-Forwarded-For / X-Real-IP from an untrusted peer (which
// must change nothing); paths entries that replace the site's rules for a prefix; the 403
// page; the denied counter. Then the admin listener's admin.allow and bearer token.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { slow, startEdge, startUpstream, runEdge, tmpDir, toYaml, h2Connect, h2Request, makeCert } from '../lib/harness.mjs';
import { req, adminReq, metric } from '../lib/access.mjs';
import { startAssets } from '../bench/cache/assets.mjs';

const T = 60000 * slow;
const PROXY = '127.0.0.1'; // the trusted proxy in front
const xff = (v) => ({ 'x-forwarded-for': v });

describe('allow and deny', () => {
    let up, edge, denied = 0;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({
            config: {
                upstream: up.url,
                proxy: { trusted_proxies: [`${PROXY}/32`, '127.0.0.50/32'] },
                access: { allow: ['127.0.0.0/28', '10.1.0.0/16', '2001:db8::/32'], deny: ['127.0.0.5', '10.1.9.0/24'] },
                paths: [
                    { prefix: '/open', access: { allow: [], deny: [] } },
                    { prefix: '/strict/', access: { allow: ['127.0.0.2'] } },
                ],
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    const expect = async (status, path, opts, what) => {
        const r = await req(edge.httpsPort, path, opts);
        assert.equal(r.status, status, `${what}: ${r.status} ${r.body.slice(0, 200)}`);
        if (status === 403) denied++;
        return r;
    };

    it('decides direct peers by their address; deny wins over allow', { timeout: T }, async () => {
        await expect(200, '/api/status', { localAddress: '127.0.0.2' }, '127.0.0.2 is in allow');
        await expect(200, '/api/status', { localAddress: '127.0.0.15' }, '127.0.0.15 is the last of the /28');
        await expect(403, '/api/status', { localAddress: '127.0.0.16' }, '127.0.0.16 is outside the /28');
        await expect(403, '/api/status', { localAddress: '127.0.0.5' }, '127.0.0.5 is denied though allowed');
        const r = await expect(403, '/', { localAddress: '127.0.0.99' }, 'the page');
        assert.match(r.headers['content-type'], /^text\/html/);
        assert.match(r.body, /<h1>403 Forbidden<\/h1>/);
        assert.ok(r.body.length < 1024, 'a small page');
        assert.equal(r.headers['cache-control'], 'no-store');
        const j = await expect(403, '/api/x', { localAddress: '127.0.0.99', headers: { accept: 'application/json' } }, 'JSON');
        assert.equal(JSON.parse(j.body).status, 403);
    });

    it('decides clients behind the trusted proxy by the X-Forwarded-For it carries', { timeout: T }, async () => {
        const via = (v) => ({ localAddress: PROXY, headers: xff(v) });
        await expect(200, '/api/status', via('10.1.2.3'), 'allowed client');
        await expect(403, '/api/status', via('10.1.9.9'), 'denied client');
        await expect(403, '/api/status', via('192.0.2.1'), 'client not in allow');
        await expect(200, '/api/status', via('2001:db8:5::1'), 'IPv6 client');
        await expect(403, '/api/status', via('2001:db9::1'), 'IPv6 client not in allow');
        // the client is the rightmost hop the proxy did not add: prepending an address changes nothing
        await expect(403, '/api/status', via('10.1.2.3, 192.0.2.1'), 'client 192.0.2.1 behind a spoofed 10.1.2.3');
        await expect(200, '/api/status', via('192.0.2.1, 10.1.2.3'), 'client 10.1.2.3 (spoof on the left)');
        // a trusted proxy with nothing to carry is a client like any other (127.0.0.50: not in allow)
        await expect(403, '/api/status', { localAddress: '127.0.0.50' }, 'the proxy 127.0.0.50 without X-Forwarded-For');
        await expect(200, '/api/status', { localAddress: '127.0.0.50', headers: xff('10.1.2.3') }, 'the proxy 127.0.0.50 for 10.1.2.3');
    });

    it('ignores what an untrusted peer says about the client', { timeout: T }, async () => {
        await expect(200, '/api/status', { localAddress: '127.0.0.3', headers: xff('127.0.0.5') }, 'allowed peer spoofing a denied address');
        await expect(403, '/api/status', { localAddress: '127.0.0.5', headers: xff('10.1.2.3') }, 'denied peer spoofing an allowed one');
        await expect(403, '/api/status', { localAddress: '127.0.0.40', headers: { 'x-real-ip': '10.1.2.3', forwarded: 'for=10.1.2.3' } }, 'X-Real-IP, Forwarded');
    });

    it('applies a paths entry instead of the site rules under its prefix', { timeout: T }, async () => {
        await expect(200, '/open', { localAddress: '127.0.0.99' }, '/open: no rules');
        await expect(200, '/OPEN/x', { localAddress: '127.0.0.5' }, '/OPEN/x: any case, below the prefix');
        await expect(403, '/opener', { localAddress: '127.0.0.99' }, '/opener is not under /open');
        await expect(403, '/strict/a', { localAddress: '127.0.0.3' }, '/strict/: only 127.0.0.2');
        await expect(403, '/strict', { localAddress: '127.0.0.3' }, '/strict (the trailing slash of the prefix is dropped)');
        await expect(200, '/strict/a', { localAddress: '127.0.0.2' }, '/strict/ from 127.0.0.2');
        await expect(403, '/strict/a', { localAddress: '127.0.0.5' }, 'the inherited deny still applies');
        await expect(200, '/strictly', { localAddress: '127.0.0.3' }, '/strictly is the site');
    });

    it('answers over HTTP/2 the same', { timeout: T }, async () => {
        const s = await h2Connect(edge.httpsPort);
        try {
            const r = await h2Request(s, '/api/status', { headers: xff('10.1.2.3') });
            assert.equal(r.status, 200, 'HTTP/2 from the trusted proxy (127.0.0.1) for an allowed client');
            const d = await h2Request(s, '/api/status', { headers: xff('192.0.2.7') });
            assert.equal(d.status, 403, 'HTTP/2 for a client not in allow');
            denied++;
        } finally {
            s.close();
        }
    });

    it('counts the denials per site in /metrics', { timeout: T }, async () => {
        const m = await adminReq(edge.adminPort, '/metrics');
        assert.equal(m.status, 200);
        assert.equal(metric(m.body, 'ott_edge_access_denied_total', { site: 'default' }), denied);
        assert.equal(metric(m.body, 'ott_edge_access_unauthorized_total', { site: 'default' }), 0);
    });
});

describe('per site', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        const ca = makeCert({ cn: 'a.test', sans: ['a.test'] });
        edge = await startEdge({
            config: {
                acme: { enabled: false },
                access: { deny: ['127.0.0.9'] }, // every site inherits it...
                sites: [
                    { name: 'a', domains: ['a.test'], upstream: up.url, tls: { cert_file: ca.certFile, key_file: ca.keyFile }, access: { allow: ['127.0.0.2', '127.0.0.9'] } },
                    { name: 'b', domains: ['b.test'], upstream: up.url, paths: [{ prefix: '/x', access: { allow: ['127.0.0.5'] } }] },
                ],
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it("applies each site's rules to its names, inherited key by key", { timeout: T }, async () => {
        const at = (name, path, localAddress) => req(edge.httpsPort, path, { localAddress, servername: name, headers: { host: name } });
        assert.equal((await at('a.test', '/api/status', '127.0.0.2')).status, 200, 'a: allowed');
        assert.equal((await at('a.test', '/api/status', '127.0.0.3')).status, 403, 'a: not in its allow');
        assert.equal((await at('a.test', '/api/status', '127.0.0.9')).status, 403, '...and the inherited deny wins');
        assert.equal((await at('b.test', '/api/status', '127.0.0.3')).status, 200, 'b: no allow-list');
        assert.equal((await at('b.test', '/api/status', '127.0.0.9')).status, 403, 'b: the inherited deny');
        assert.equal((await at('b.test', '/x/y', '127.0.0.3')).status, 403, "b's paths entry");
        assert.equal((await at('b.test', '/x/y', '127.0.0.5')).status, 200, "b's paths entry, allowed");
        const m = (await adminReq(edge.adminPort, '/metrics')).body;
        assert.equal(metric(m, 'ott_edge_access_denied_total', { site: 'a' }), 2);
        assert.equal(metric(m, 'ott_edge_access_denied_total', { site: 'b' }), 2);
    });
});

describe('access before the edge cache', () => {
    let assets, edge;
    before(async () => {
        assets = await startAssets();
        edge = await startEdge({
            config: { upstream: assets.url, access: { allow: ['127.0.0.2', '127.0.0.3'], rate: { requests: 1, per: '1m', burst: 2 } } },
        });
    });
    after(async () => {
        await edge?.stop();
        await assets?.stop();
    });

    it('never serves a cached response to a client the rules refuse or limit', { timeout: T }, async () => {
        const a = await req(edge.httpsPort, '/assets/app.js', { localAddress: '127.0.0.2' });
        assert.equal(a.status, 200);
        assert.match(a.headers['cache-control'], /public/);
        assert.equal((await req(edge.httpsPort, '/assets/app.js', { localAddress: '127.0.0.3' })).status, 200, 'a hit for another allowed client');
        assert.equal(await assets.count('/assets/app.js'), 1, 'the second answer came from the cache');
        assert.equal((await req(edge.httpsPort, '/assets/app.js', { localAddress: '127.0.0.4' })).status, 403, 'not for a refused client');
        assert.equal((await req(edge.httpsPort, '/assets/app.js', { localAddress: '127.0.0.2' })).status, 200, 'the second of a burst of 2');
        assert.equal((await req(edge.httpsPort, '/assets/app.js', { localAddress: '127.0.0.2' })).status, 429, 'a hit counts in the rate');
    });
});

describe('the admin listener: admin.allow and admin.token_file', () => {
    let up, edge, dir, tokenFile;
    const token = 'f3a1c9e07b5d42a8e6c1b0d9a7f35e21';
    const bearer = (t) => ({ authorization: `Bearer ${t}` });
    before(async () => {
        up = await startUpstream();
        dir = tmpDir();
        tokenFile = path.join(dir, 'token');
        writeFileSync(tokenFile, `${token}\n`);
        edge = await startEdge({ config: { upstream: up.url, admin: { allow: ['127.0.0.2/32', '127.0.0.3'], token_file: tokenFile } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('keeps the probes open and the rest to admin.allow', { timeout: T }, async () => {
        for (const p of ['/livez', '/readyz']) {
            const r = await adminReq(edge.adminPort, p, { localAddress: '127.0.0.9' });
            assert.notEqual(r.status, 403, `${p} open to anyone`);
            assert.notEqual(r.status, 401, `${p} needs no token`);
        }
        for (const p of ['/metrics', '/status.json', '/']) {
            const r = await adminReq(edge.adminPort, p, { localAddress: '127.0.0.9', headers: bearer(token) });
            assert.equal(r.status, 403, `${p} from 127.0.0.9 (not in admin.allow), even with the token`);
        }
    });

    it('wants the bearer token for /metrics and /status.json, not for the page', { timeout: T }, async () => {
        const from = '127.0.0.2';
        for (const p of ['/metrics', '/status.json']) {
            let r = await adminReq(edge.adminPort, p, { localAddress: from });
            assert.equal(r.status, 401, `${p} without a token`);
            assert.equal(r.headers['www-authenticate'], 'Bearer realm="ott-edge admin"');
            r = await adminReq(edge.adminPort, p, { localAddress: from, headers: bearer(token.slice(0, -1) + '0') });
            assert.equal(r.status, 401, `${p} with a wrong token`);
            r = await adminReq(edge.adminPort, p, { localAddress: from, headers: { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` } });
            assert.equal(r.status, 401, `${p} with the token as Basic`);
            r = await adminReq(edge.adminPort, p, { localAddress: '127.0.0.3', headers: { authorization: `bearer ${token}` } });
            assert.equal(r.status, 200, `${p} with the token (scheme in any case)`);
        }
        const page = await adminReq(edge.adminPort, '/', { localAddress: from });
        assert.equal(page.status, 200, 'the page holds no data: it asks for the token');
        assert.match(page.body, /Authorization: "Bearer "/);
    });

    it('re-reads the token on SIGHUP; `ott-edge status` sends it', { timeout: T }, async () => {
        // `ott-edge status` connects from 127.0.0.1: not in this edge's admin.allow
        const denied = await runEdge(['status', '--config', edge.configPath]);
        assert.equal(denied.code, 1);
        assert.match(denied.stderr, /answered 403 \(this address is not in admin\.allow\)/);
        const fresh = 'a'.repeat(40);
        writeFileSync(tokenFile, fresh);
        edge.kill('SIGHUP');
        await edge.waitForLog(/admin_token_reloaded/);
        assert.equal((await adminReq(edge.adminPort, '/metrics', { localAddress: '127.0.0.2', headers: bearer(token) })).status, 401, 'old token');
        assert.equal((await adminReq(edge.adminPort, '/metrics', { localAddress: '127.0.0.2', headers: bearer(fresh) })).status, 200, 'new token');
        writeFileSync(tokenFile, 'short');
        edge.kill('SIGHUP');
        assert.match(await edge.waitForLog(/reload_failed/), /admin\.token_file/, 'the reload is refused, naming the key');
        assert.equal((await adminReq(edge.adminPort, '/metrics', { localAddress: '127.0.0.2', headers: bearer(fresh) })).status, 200, 'a bad file keeps the token');
    });

    it('lets `ott-edge status` in with the token, and says what is missing without it', { timeout: T }, async () => {
        writeFileSync(tokenFile, `${token}\n`);
        const e2 = await startEdge({ config: { upstream: up.url, admin: { token_file: tokenFile } } });
        try {
            const ok = await runEdge(['status', '--config', e2.configPath]);
            assert.equal(ok.code, 0, ok.stderr);
            assert.match(ok.stdout, /^ott-edge .* at 127\.0\.0\.1:/m);
            const no = await runEdge(['status', '--admin', `127.0.0.1:${e2.adminPort}`]);
            assert.equal(no.code, 1);
            assert.match(no.stderr, /answered 401 \(it needs the token of admin\.token_file/);
        } finally {
            await e2.stop();
        }
    });

    it('refuses a bad token file at start (exit 2, naming the key)', { timeout: T }, async () => {
        const bad = path.join(dir, 'bad-token');
        writeFileSync(bad, 'two words here but long enough\n');
        const r = await runEdge(['check-config', '--config', await configWith({ upstream: up.url, admin: { token_file: bad } })]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /^config: admin\.token_file: ".*bad-token": the token must be one line of printable characters/m);
        const missing = await runEdge(['check-config', '--config', await configWith({ upstream: up.url, admin: { token_file: path.join(dir, 'nope') } })]);
        assert.equal(missing.code, 2);
        assert.match(missing.stderr, /admin\.token_file: cannot read ".*nope": No such file or directory/);
    });

    async function configWith(obj) {
        const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
        writeFileSync(f, toYaml(obj));
        return f;
    }
});
